"""The bundled digits dataset (8x8 handwritten digits, 1797 samples, 10 classes) as an HDF5 file.

The CSV ships inside the package (see LICENSE.digits); the first call writes it, split into
train/validation/test, to an HDF5 file in the cache folder, so training reads it from disk through
``trainFromHost`` like any user dataset.
"""
import gzip
import os
from pathlib import Path

import numpy

from ..engine import serialize

csvPath = Path(__file__).with_name("digits.csv.gz")


def cacheDir():
    """``$MACROBATCH_CACHE``, else ``$XDG_CACHE_HOME/macrobatch``, else ``~/.cache/macrobatch``."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "macrobatch"
    return Path(os.environ.get("MACROBATCH_CACHE", default))


def loadDigits():
    """Images (1797, 1, 8, 8) float32 scaled to [0, 1] and labels (1797,) int64."""
    with gzip.open(csvPath, "rt") as f:
        table = numpy.loadtxt(f, delimiter=",", dtype=numpy.int64)
    images = (table[:, :64].astype(numpy.float32) / 16.0).reshape(-1, 1, 8, 8)
    return images, table[:, 64]


def digitsH5(path=None, valFraction=0.15, testFraction=0.15, seed=0):
    """Path of the digits HDF5 file (datasets data/labels, val_data/val_labels, test_data/test_labels),
    written on first use with a fixed shuffled split."""
    path = Path(path) if path is not None else cacheDir() / "digits.h5"
    if path.exists():
        return path
    images, labels = loadDigits()
    order = numpy.random.default_rng(seed).permutation(len(labels))
    nVal, nTest = int(len(order) * valFraction), int(len(order) * testFraction)
    parts = {"test_": order[:nTest], "val_": order[nTest:nTest + nVal], "": order[nTest + nVal:]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with serialize.atomicH5(path) as f:
        for prefix, idx in parts.items():
            f.create_dataset(prefix + "data", data=images[idx])
            f.create_dataset(prefix + "labels", data=labels[idx])
    return path
