"""Every random source the engine uses, seeded by one call.

Weight initialisation draws on the host (NumPy), so one seed gives the same initial weights
on both backends; shuffling and dropout masks draw on the device, where the data lives.
"""
import numpy

from .backend import isCuda, xp

_hostRng = numpy.random.default_rng()
_deviceRng = xp.random.RandomState() if isCuda else numpy.random.default_rng()


def setSeed(seed):
    """Seed the host and device generators; a CPU run is then reproducible bit for bit."""
    global _hostRng, _deviceRng
    _hostRng = numpy.random.default_rng(seed)
    _deviceRng = xp.random.RandomState(seed) if isCuda else numpy.random.default_rng(seed + 1)


def hostRng():
    """The NumPy Generator used for weight initialisation and other host-side draws."""
    return _hostRng


def permutation(n):
    """A device array holding a random permutation of range(n)."""
    return _deviceRng.permutation(n)


def uniform(shape, dtype):
    """A device array of uniform samples in [0, 1)."""
    if isCuda:
        return _deviceRng.random_sample(shape, dtype=dtype)
    return _deviceRng.random(shape, dtype=dtype)


def normal(shape, dtype):
    """A device array of standard normal samples (DP-SGD's noise)."""
    return _deviceRng.standard_normal(shape, dtype=dtype)
