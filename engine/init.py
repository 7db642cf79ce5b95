"""Weight initialisation schemes, drawn on the host so a seed means the same weights on any backend."""
import numpy

from . import random
from .backend import toDevice
from .dtype import defaultDtype

schemes = ("he", "xavier", "uniform")


def initWeights(shape, fanIn, fanOut, scheme="he", dtype=defaultDtype):
    """A device array of the given shape drawn by scheme.

    he: normal, std sqrt(2 / fanIn), for ReLU networks;
    xavier: uniform in +-sqrt(6 / (fanIn + fanOut)), for tanh/sigmoid networks;
    uniform: uniform in +-1/sqrt(fanIn), PyTorch's default for Linear and Conv.
    """
    rng = random.hostRng()
    if scheme == "he":
        w = rng.normal(0.0, numpy.sqrt(2.0 / fanIn), size=shape)
    elif scheme == "xavier":
        bound = numpy.sqrt(6.0 / (fanIn + fanOut))
        w = rng.uniform(-bound, bound, size=shape)
    elif scheme == "uniform":
        bound = 1.0 / numpy.sqrt(fanIn)
        w = rng.uniform(-bound, bound, size=shape)
    else:
        raise ValueError(f"unknown initscheme {scheme!r}; expected one of {schemes}")
    return toDevice(w, dtype)
