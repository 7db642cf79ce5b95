"""The precision table of issue 17: model file size, inference samples/s (macrobatch and ONNX Runtime, batch 1
and 128) and test accuracy at float32, float16 and int8, for the command line's digits CNN and the
benchmark's LeNet-28 (deploy.precisiontable measures; this script brings the two models and their data).

    python bench/quantize.py --cnn MODEL.h5 [--lenet-epochs 8] [--percentile P] [--out TABLE.md]

MODEL.h5 is the CNN ``macrobatch train --out MODEL.h5`` trains on the bundled digits. LeNet-28 takes 28x28
images, and the bundled digits are 8x8: it is trained here (seeded, Adam, batch 128) on the digits scaled up
by 3 (nearest) and padded to 28x28, with the same train/test split. Both are calibrated on the first 512
training images and scored on the test split.

Both frameworks run on one thread (OpenBLAS for NumPy, set here before NumPy loads unless
OPENBLAS_NUM_THREADS is set; intra_op_num_threads=1 for ONNX Runtime): the table compares precisions, and on
a shared machine a two-thread BLAS call waiting for a busy core made LeNet-28's batch-1 forward 24x slower
(24 ms against 1.0 ms) from one run to the next.
"""
import argparse
import os
import tempfile

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy

from macrobatch.datasets.digits import digitsH5
from macrobatch.deploy.precisiontable import cpuName, formatTable, measurePrecisions
from macrobatch.engine import serialize
from macrobatch.modules import loadModel

from models import specs
from workloads import OursWorkload

calibrationSamples = 512


def digits():
    """{'data', 'labels', 'test_data', 'test_labels'} of the bundled digits (host arrays)."""
    with serialize.openH5(digitsH5()) as f:
        return {key: f[key][()] for key in ("data", "labels", "test_data", "test_labels")}


def upscale28(images):
    """(N, 1, 8, 8) images as (N, 1, 28, 28): each pixel repeated 3x3, then 2 zero pixels on every side."""
    big = images.repeat(3, axis=2).repeat(3, axis=3)
    return numpy.pad(big, ((0, 0), (0, 0), (2, 2), (2, 2)))


def trainLenet(x, y, epochs, seed=0):
    """LeNet-28 of bench/models.py trained on (x, y) for epochs passes (seeded)."""
    work = OursWorkload(specs["lenet"], seed)
    data, labels = work.makeData(x, y)
    for _ in range(epochs):
        work.train(data, labels)
    return work.net


def table(net, shape, data, args, title):
    batches = [data["data"][i:i + 128] for i in range(0, calibrationSamples, 128)]
    method = "minmax" if args.percentile is None else "percentile"
    with tempfile.TemporaryDirectory() as folder:
        rows = measurePrecisions(net, shape, batches, data["test_data"], data["test_labels"], folder, method,
                                 args.percentile or 99.99, rounds=args.rounds)
    return formatTable(rows, title, cpuName())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cnn", required=True, help="the digits CNN trained by `macrobatch train --out`")
    p.add_argument("--lenet-epochs", type=int, default=8, help="LeNet-28's training epochs")
    p.add_argument("--percentile", type=float, help="percentile calibration at P (default: min-max)")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds over all models (the best is kept)")
    p.add_argument("--out", help="also write the tables (markdown) to this file")
    args = p.parse_args()
    small = digits()
    large = {key: upscale28(value) if key.endswith("data") else value for key, value in small.items()}
    lenet = trainLenet(large["data"], large["labels"], args.lenet_epochs)
    tables = [table(loadModel(args.cnn), (1, 8, 8), small, args, f"digits CNN ({args.cnn})"),
              table(lenet, specs["lenet"].inshape, large, args, f"{specs['lenet'].title}, digits scaled to 28x28")]
    text = "\n\n".join(tables)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
