"""matmul of 16-bit data: the float32 product rounded once, as cuBLAS's CUBLAS_COMPUTE_32F gives."""
import numpy as np
import pytest

from macrobatch.engine.backend import isCuda, toDevice, toHost
from macrobatch.engine.dtype import bfloat16Dtype
from macrobatch.engine.errors import DtypeError
from macrobatch.engine.gemm import matmul


def halfDtype(name):
    if name == "float16":
        return np.dtype(np.float16)
    try:
        return bfloat16Dtype("test")
    except DtypeError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize("given", [False, True], ids=["new", "out"])
def test_a_16_bit_product_is_the_float32_product_rounded_once(name, given):
    dtype = halfDtype(name)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 40, 300)).astype(dtype), rng.standard_normal((300, 3)).astype(dtype)
    expected = (a.astype(np.float32) @ b.astype(np.float32)).astype(dtype)
    out = toDevice(np.zeros((2, 40, 3), dtype)) if given else None
    got = matmul(toDevice(a), toDevice(b), out=out)
    assert got.dtype == dtype and (out is None or got is out)
    if isCuda:  # cuBLAS sums in its own order: within a rounding of float16
        np.testing.assert_allclose(toHost(got).astype(np.float32), expected.astype(np.float32), rtol=2e-3, atol=1e-3)
    else:
        np.testing.assert_array_equal(toHost(got), expected)


def test_other_dtypes_are_plain_matmul():
    a, b = np.arange(6.0).reshape(2, 3), np.ones((3, 2))
    got = matmul(toDevice(a), toDevice(b))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(toHost(got), a @ b)
