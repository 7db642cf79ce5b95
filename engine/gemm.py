"""matmul: the GEMMs of the modules, in their data's dtype, accumulated in float32 for 16-bit data, and
on the CPU split over macrobatch's threads (engine.parallel: the BLAS itself runs on one thread)."""
import math

import numpy

from . import parallel
from .backend import isCuda, xp
from .dtype import isHalf

minSplit = 1 << 22  # multiply-adds below which a GEMM stays on one thread (~40 us: the hand-off costs ~20)
minRowSplit = 256   # rows from which a GEMM is split by rows (each thread packs all of b) rather than columns


def matmul(a, b, out=None):
    """a @ b in a's dtype (written into out when given). On CuPy, and for 32- and 64-bit data, xp.matmul.
    16-bit data on the CPU is multiplied as float32 copies and rounded once: NumPy has no BLAS loop for
    float16 (its own loop runs at about 1/300 of sgemm's rate) and none for ml_dtypes' bfloat16 (which
    computes in float32 and returns float32). Exact products summed in float32, then one rounding, is what
    cuBLAS does for float16 with CUBLAS_COMPUTE_32F (cupy/_core/_routines_linalg.pyx), so the backends
    round alike."""
    if isCuda:
        return xp.matmul(a, b, out=out)
    if a.dtype.itemsize != 2 or not isHalf(a.dtype):  # the size first: isHalf costs microseconds
        return splitMatmul(a, b, out)
    product = splitMatmul(a.astype(numpy.float32), b.astype(numpy.float32))
    if out is None:
        return product.astype(a.dtype)
    out[...] = product
    return out


def splitMatmul(a, b, out=None):
    """numpy.matmul(a, b, out) with the product's rows (from minRowSplit rows, or when they outnumber the
    columns) or else its columns cut into one part per worker thread, each a single-threaded BLAS call.
    Measured on 2 cores against OpenBLAS's own two threads, in the steps' shapes: the same speed to 20 %
    either way for a GEMM alone, and no spinning BLAS thread left behind to slow the NumPy work after it."""
    if a.ndim < 2 or b.ndim < 2 or not parallel.ownsBlas or parallel.workers < 2 or parallel.inParallel():
        return numpy.matmul(a, b, out=out)
    m, n = a.shape[-2], b.shape[-1]
    if math.prod(a.shape[:-2]) * m * a.shape[-1] * n < minSplit:  # multiply-adds (an empty product has none)
        return numpy.matmul(a, b, out=out)
    if out is None:
        shape = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (m, n)
        out = numpy.empty(shape, numpy.result_type(a, b))
    if m >= minRowSplit or m >= n:
        parts = parallel.splitRanges(m, minimum=1)
        parallel.runParallel(lambda i, j: numpy.matmul(a[..., i:j, :], b, out=out[..., i:j, :]), parts)
    else:
        parts = parallel.splitRanges(n, minimum=1)
        parallel.runParallel(lambda i, j: numpy.matmul(a, b[..., i:j], out=out[..., i:j]), parts)
    return out
