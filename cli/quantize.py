"""macrobatch quantize: a trained float32 model as float16 or int8 (post-training), optionally with an int8
QDQ ONNX model for ONNX Runtime, and the table of size, speed and accuracy at each precision (--report)."""
import argparse
import os
import tempfile

from ..deploy.precisiontable import cpuName, formatTable, measurePrecisions
from ..deploy.quantize import precisions, quantizeModel
from ..engine import serialize
from ..modules.module import loadModel, savedInputShape
from .arguments import positiveInt
from .predict import checkInputShape


def readCalibration(args):
    """Host batches of the first --samples inputs of the --calibrate file's 'data', in batches of 128."""
    with serialize.openH5(args.calibrate) as f:
        data = serialize.getDataset(f, "data")
        checkInputShape(args.model, data, "data")
        samples = data[:args.samples]
    return [samples[i:i + 128] for i in range(0, len(samples), 128)]


def readTest(path):
    """The 'test_data' and 'test_labels' of path, for --report."""
    with serialize.openH5(path) as f:
        return serialize.getDataset(f, "test_data")[()], serialize.getDataset(f, "test_labels")[()]


def quantize(args):
    if args.calibrate is None and (args.to == "int8" or args.report):
        raise ValueError(f"{'--to int8' if args.to == 'int8' else '--report'} needs --calibrate DATA.h5 "
                         "(an HDF5 file with the inputs in 'data', e.g. the training file)")
    if args.onnx and args.to != "int8":
        raise ValueError("--onnx writes the int8 QDQ model only: ONNX Runtime's CPU provider has no float16 "
                         "Conv/Gemm kernels on x86 and runs a float16 model in float32 behind Cast nodes")
    if args.onnx:
        from ..deploy.onnxexport import exportOnnx
        from ..deploy.onnxquantize import quantizeOnnx
    method = "minmax" if args.percentile is None else "percentile"
    percentile = 99.99 if args.percentile is None else args.percentile
    net = loadModel(args.model)
    batches = readCalibration(args) if args.calibrate else None
    test = readTest(args.calibrate) if args.report else None
    shape = savedInputShape(args.model) or (tuple(batches[0].shape[1:]) if batches else None)
    quantizeModel(net, args.to, batches, method, percentile).save(args.out, shape)
    print(f"wrote {args.out}: {args.to}, {os.path.getsize(args.out):,} bytes (float32: "
          f"{os.path.getsize(args.model):,})")
    if args.onnx:
        with tempfile.TemporaryDirectory() as folder:
            floatPath = os.path.join(folder, "float32.onnx")
            exportOnnx(net, floatPath, shape)
            quantizeOnnx(floatPath, args.onnx, batches, method, percentile)
        print(f"wrote {args.onnx}: int8 QDQ for ONNX Runtime, {os.path.getsize(args.onnx):,} bytes")
    if args.report:
        with tempfile.TemporaryDirectory() as folder:
            rows = measurePrecisions(net, shape, batches, *test, folder, method, percentile, onnx=onnxAvailable())
        print(formatTable(rows, args.model, cpuName()))


def onnxAvailable():
    """Whether the ONNX columns can be measured (the .[onnx] extra is installed)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def percentileArg(text):
    value = float(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"must be in (0, 100], got {text}")
    return value


def addParser(sub):
    q = sub.add_parser("quantize", help="a trained model as float16 or int8 (post-training quantisation)")
    q.add_argument("model", help="float32 model file written by training (Module.save)")
    q.add_argument("--to", required=True, choices=precisions,
                   help="float16: weights and compute in half precision; int8: Linear and Conv layers with "
                        "per-channel int8 weights and calibrated int8 inputs, other layers float32")
    q.add_argument("--calibrate", metavar="DATA.h5",
                   help="HDF5 file whose 'data' calibrates the int8 activation ranges (and whose 'test_data'/"
                        "'test_labels' --report scores); needed for int8 and --report")
    q.add_argument("--out", required=True, help="where to write the quantised macrobatch model file")
    q.add_argument("--percentile", type=percentileArg, metavar="P",
                   help="take activation ranges at the P-th percentile of |input| (e.g. 99.99) instead of the "
                        "largest value (min-max), clipping rare outliers")
    q.add_argument("--samples", type=positiveInt, default=512, help="calibration inputs read from 'data'")
    q.add_argument("--onnx", metavar="OUT.onnx", help="also write the int8 QDQ ONNX model for ONNX Runtime "
                                                       "(needs macrobatch[onnx])")
    q.add_argument("--report", action="store_true",
                   help="measure and print file size, samples/s (macrobatch and ONNX Runtime, batch 1 and 128) "
                        "and test accuracy at float32, float16 and int8")
    q.set_defaults(run=quantize)
    return q
