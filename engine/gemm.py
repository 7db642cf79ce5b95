"""matmul: the GEMMs of the modules, in their data's dtype, accumulated in float32 for 16-bit data."""
import numpy

from .backend import isCuda, xp
from .dtype import isHalf


def matmul(a, b, out=None):
    """a @ b in a's dtype (written into out when given). On CuPy, and for 32- and 64-bit data, xp.matmul.
    16-bit data on the CPU is multiplied as float32 copies and rounded once: NumPy has no BLAS loop for
    float16 (its own loop runs at about 1/300 of sgemm's rate) and none for ml_dtypes' bfloat16 (which
    computes in float32 and returns float32). Exact products summed in float32, then one rounding, is what
    cuBLAS does for float16 with CUBLAS_COMPUTE_32F (cupy/_core/_routines_linalg.pyx), so the backends
    round alike."""
    if isCuda or a.dtype.itemsize != 2 or not isHalf(a.dtype):  # the size first: isHalf costs microseconds
        return xp.matmul(a, b, out=out)
    product = numpy.matmul(a.astype(numpy.float32), b.astype(numpy.float32))
    if out is None:
        return product.astype(a.dtype)
    out[...] = product
    return out
