"""HDF5 inputs that cannot be trained on: the error names the file (and dataset and samples) and no step is taken."""
import os
import re

import h5py
import numpy as np
import pytest

from macrobatch.engine import serialize
from macrobatch.engine.errors import DatasetError, NonFiniteError, ReadError, ShapeError
from macrobatch.handlers import Calculator
from macrobatch.modules import Linear


def writeBlobs(path, data, labels, **options):
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data, **options)
        f.create_dataset("labels", data=labels)
    return path


def test_hdf5_data_of_the_wrong_rank_for_the_first_layer_names_expected_and_got(tmp_path, classifier, blobs,
                                                                                weights, sameWeights):
    data, labels = blobs(60)
    path = writeBlobs(tmp_path / "d.h5", data.reshape(60, 2, 4), labels)
    net, trainer = classifier(batchsize=20)
    before = weights(net)
    with serialize.openH5(path) as f, pytest.raises(ShapeError, match=r"expected input of shape \(batch, 8\), "
                                                                      r"got \(20, 2, 4\)"):
        trainer.trainFromHost(f["data"], f["labels"], macroBatchSize=60)
    assert sameWeights(before, weights(net))


def test_corrupt_compressed_chunk_stops_naming_samples_dataset_and_file_before_they_are_used(
        tmp_path, classifier, blobs, weights):
    data, labels = blobs(400)
    path = writeBlobs(tmp_path / "d.h5", data, labels, chunks=(100, 8), compression="gzip")
    with h5py.File(path, "r") as f:  # the file offset of the third chunk (samples 200..299)
        offset, size = f["data"].id.get_chunk_info(2).byte_offset, f["data"].id.get_chunk_info(2).size
    with open(path, "r+b") as fh:
        fh.seek(offset + size // 4)
        fh.write(b"\0" * (size // 2))
    net, trainer = classifier(batchsize=50)
    snapshots = []
    trainer.onBatchFinish = lambda t: snapshots.append(weights(net))
    with serialize.openH5(path) as f, pytest.raises(ReadError) as caught:
        trainer.trainFromHost(f["data"], f["labels"], macroBatchSize=100, random=False)
    message = str(caught.value)
    assert message.startswith(f"reading samples 200..299 of dataset /data in {path}: ")
    assert isinstance(caught.value, OSError)
    assert len(snapshots) == 4  # the two macrobatches before it were trained, none of it
    assert all(np.array_equal(snapshots[-1][k], w) for k, w in weights(net).items())


def test_overwritten_raw_bytes_that_decode_to_nan_are_caught_by_the_finite_check_naming_the_sample(
        tmp_path, classifier, blobs):
    data, labels = blobs(100)
    path = writeBlobs(tmp_path / "d.h5", data, labels)
    with h5py.File(path, "r") as f:
        offset = f["data"].id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(offset + 4 * 8 * 70)  # sample 70, feature 0
        fh.write(b"\xff" * 4)  # a float32 NaN
    net, trainer = classifier(batchsize=10)
    with serialize.openH5(path) as f, pytest.raises(NonFiniteError, match=r"^data: NaN or Inf in sample 70 \("
                                                                          r"samples 50..99, macrobatch 1 of 2\)"):
        trainer.trainFromHost(f["data"], f["labels"], macroBatchSize=50, random=False)


def test_truncated_hdf5_file_is_refused_at_open_naming_the_file(tmp_path, blobs):
    path = writeBlobs(tmp_path / "d.h5", *blobs(100))
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
    with pytest.raises(DatasetError, match="^" + re.escape(f"{path}: not a readable HDF5 file") + ".*truncated file"):
        serialize.openH5(path)


def test_calculator_on_a_corrupt_chunk_names_the_file_and_returns_nothing_partial(tmp_path, blobs):
    data, labels = blobs(200)
    path = writeBlobs(tmp_path / "d.h5", data, labels, chunks=(200, 8), compression="gzip")
    with h5py.File(path, "r") as f:
        info = f["data"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 4)
        fh.write(b"\0" * (info.size // 2))
    calc = Calculator(Linear(8, 3), batchsize=50)
    with serialize.openH5(path) as f, pytest.raises(ReadError, match=re.escape(f"of dataset /data in {path}: ")):
        calc.calcFromHost(f["data"], macroBatchSize=200)
    assert calc.results is None
