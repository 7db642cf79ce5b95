"""Every random source the engine uses, seeded by one call.

Weight initialisation draws on the host (NumPy), so one seed gives the same initial weights
on both backends; shuffling and dropout masks draw on the device, where the data lives.
"""
import numpy

from .backend import isCuda, xp
from .parallel import runParallel, splitRanges

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


noiseBlock = 1 << 18  # values per block of addNormal's noise on the CPU: fixed, so the draw ignores the threads


def addNormal(ary, std):
    """ary += std * N(0, 1) in place (DP-SGD's noise); ary: a float32 or float64 device array. CuPy draws it
    in one kernel. On the CPU the flat array is drawn in blocks of noiseBlock values, block i from its own
    generator seeded by (one draw of the device generator, i), the blocks spread over the cores: the noise
    never takes the array's size of memory, two cores draw it 1.8x as fast as one, and its values do not depend on
    the thread count (setSeed reproduces them)."""
    if isCuda:
        ary += _deviceRng.standard_normal(ary.shape, dtype=ary.dtype) * std
        return
    if not ary.flags.c_contiguous:
        raise ValueError("addNormal: ary must be contiguous (its flat view is where the noise goes)")
    flat = ary.reshape(-1)
    key = int(_deviceRng.integers(2 ** 63))

    def draw(first, last):
        for i in range(first, last):
            piece = flat[i * noiseBlock:(i + 1) * noiseBlock]
            noise = numpy.random.default_rng((key, i)).standard_normal(piece.shape, dtype=piece.dtype)
            noise *= std
            piece += noise

    runParallel(draw, splitRanges(-(-flat.size // noiseBlock), minimum=1))
