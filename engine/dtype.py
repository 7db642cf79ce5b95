"""Floating dtypes the engine computes in (bfloat16 through ml_dtypes, on NumPy only), and the checks that keep
inputs to them."""
import numpy

from .backend import isCuda
from .errors import DtypeError

defaultDtype = numpy.dtype(numpy.float32)
floatDtypes = (numpy.dtype(numpy.float16), numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def checkFloat(dtype, where):
    """Raise DtypeError unless dtype is one of the engine's float types, or bfloat16 where this backend has it
    (see bfloat16Dtype)."""
    dtype = numpy.dtype(dtype)
    if isBfloat16(dtype):
        bfloat16Dtype(where)
    elif dtype not in floatDtypes:
        raise DtypeError(f"{where}: expected a floating dtype (float16/32/64, or bfloat16), got {dtype}")


def isFloat(dtype):
    """Whether dtype holds floating-point values: NumPy's floats (kind 'f') or bfloat16 (kind 'V')."""
    dtype = numpy.dtype(dtype)
    return dtype.kind == "f" or isBfloat16(dtype)


def isBfloat16(dtype):
    """Whether dtype is ml_dtypes' bfloat16 (known by name: there is none to compare with without ml_dtypes)."""
    return numpy.dtype(dtype).name == "bfloat16"


def hostCastable(srcDtype, dstDtype):
    """True when converting host data of srcDtype to dstDtype loses nothing that matters for training:
    floats to any float, booleans and integers to float (values are exact up to 2**24 in float32)."""
    src = numpy.dtype(srcDtype)
    return (src.kind in "biu" or isFloat(src)) and isFloat(dstDtype)


def statDtype(dtype):
    """The dtype that modules take long sums and statistics of data of this dtype in: float32 for
    float16 data, whose 11-bit mantissa loses a long sum and whose range (65504) overflows a sum of
    squares (and for bfloat16 data, whose 8-bit mantissa is shorter still), else the data's own dtype."""
    return numpy.dtype(numpy.float32) if isHalf(dtype) else numpy.promote_types(dtype, numpy.float32)


def isHalf(dtype):
    """Whether dtype is a 16-bit float: float16, or ml_dtypes' bfloat16 (whose NumPy kind is 'V')."""
    dtype = numpy.dtype(dtype)
    return dtype == numpy.float16 or isBfloat16(dtype)


precisions = ("float32", "float16", "bfloat16")


def precisionDtype(precision, where):
    """The dtype a training precision computes forward and backward in: "float32", "float16" or "bfloat16"
    (ValueError for anything else; DtypeError where this backend has no bfloat16, see bfloat16Dtype)."""
    if precision not in precisions:
        raise ValueError(f"{where}: precision must be one of {', '.join(map(repr, precisions))}, got {precision!r}")
    return bfloat16Dtype(where) if precision == "bfloat16" else numpy.dtype(precision)


def bfloat16Dtype(where):
    """ml_dtypes' bfloat16, the one NumPy extension type CuPy 14 also takes; DtypeError, saying what to install,
    where it is missing, and on the CUDA backend, which cannot run it yet."""
    if isCuda:
        raise DtypeError(f"{where}: bfloat16 runs on the NumPy backend only: the CUDA stand-in (cudasim) has no "
                         "bfloat16 kernels, CuPy 14's batched bfloat16 matmul fails (cupy PR #10317), and the kernels "
                         "col2im, maxpool_grad, avgpool and avgpool_grad accumulate with += on bfloat16, which CuPy's "
                         "bfloat16 lacks; use precision='float16' on the GPU")
    try:
        import ml_dtypes
    except ImportError:
        raise DtypeError(f"{where}: bfloat16 needs the ml_dtypes package (pip install ml_dtypes, or "
                         "macrobatch[bfloat16]); use precision='float16' without it") from None
    return numpy.dtype(ml_dtypes.bfloat16)
