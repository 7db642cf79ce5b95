"""Floating dtypes the engine computes in, and the checks that keep inputs to them."""
import numpy

from .errors import DtypeError

defaultDtype = numpy.dtype(numpy.float32)
floatDtypes = (numpy.dtype(numpy.float16), numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def checkFloat(dtype, where):
    """Raise DtypeError unless dtype is one of the engine's float types."""
    if numpy.dtype(dtype) not in floatDtypes:
        raise DtypeError(f"{where}: expected a floating dtype (float16/32/64), got {numpy.dtype(dtype)}")


def hostCastable(srcDtype, dstDtype):
    """True when converting host data of srcDtype to dstDtype loses nothing that matters for training:
    floats to any float, booleans and integers to float (values are exact up to 2**24 in float32)."""
    src = numpy.dtype(srcDtype)
    return src.kind in "fbiu" and numpy.dtype(dstDtype).kind == "f"


def statDtype(dtype):
    """The dtype that modules take long sums and statistics of data of this dtype in: float32 for
    float16 data, whose 11-bit mantissa loses a long sum and whose range (65504) overflows a sum of
    squares, else the data's own dtype."""
    return numpy.promote_types(dtype, numpy.float32)
