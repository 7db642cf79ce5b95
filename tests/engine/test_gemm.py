"""matmul of 16-bit data: the float32 product rounded once, as cuBLAS's CUBLAS_COMPUTE_32F gives; on the CPU
large GEMMs split over macrobatch's threads equal one BLAS call."""
import numpy as np
import pytest

from macrobatch.engine import gemm, parallel
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


@pytest.mark.skipif(isCuda, reason="the split is the NumPy path")
@pytest.mark.parametrize("shape", [(300, 70, 500), (100, 90, 900), (2, 3, 160, 80, 700)],
                         ids=["by-rows", "by-columns", "batched"])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("given", [False, True], ids=["new", "into-out"])
def test_a_split_gemm_equals_one_blas_call(monkeypatch, shape, transposed, given):
    """Cut into three parts by rows (from minRowSplit rows) or columns, each a BLAS call of its own on the
    workers, the product is the one-call product (each element by the same kernel), into out or a new array."""
    monkeypatch.setattr(parallel, "workers", 3)
    monkeypatch.setattr(parallel, "ownsBlas", True)
    monkeypatch.setattr(gemm, "minSplit", 1)
    *lead, m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal(tuple(lead) + (k, m) if transposed else tuple(lead) + (m, k)).astype(np.float32)
    a = a.swapaxes(-1, -2) if transposed else a
    b = rng.standard_normal(tuple(lead[1:]) + (k, n)).astype(np.float32)  # broadcast over the leading axis
    calls = []
    monkeypatch.setattr(parallel, "runParallel", lambda fn, parts: calls.append(parts) or [fn(*p) for p in parts])
    out = np.full(tuple(lead) + (m, n), np.nan, np.float32) if given else None
    product = gemm.matmul(a, b, out=out)
    assert (product is out) == given and len(calls) == 1 and len(calls[0]) == 3
    np.testing.assert_allclose(product, np.matmul(a, b), rtol=1e-6, atol=1e-5)


@pytest.mark.skipif(isCuda, reason="the split is the NumPy path")
def test_small_gemms_and_gemms_inside_a_part_are_one_call(monkeypatch):
    calls = []
    monkeypatch.setattr(parallel, "ownsBlas", True)
    monkeypatch.setattr(parallel, "workers", 2)
    monkeypatch.setattr(parallel, "runParallel", lambda fn, parts: calls.append(parts))
    small = np.ones((8, 8), np.float32)
    np.testing.assert_array_equal(gemm.matmul(small, small), np.full((8, 8), 8, np.float32))
    monkeypatch.setattr(parallel, "inParallel", lambda: True)
    big = np.ones((512, 512), np.float32)
    assert gemm.matmul(big, big)[0, 0] == 512 and calls == []


@pytest.mark.skipif(isCuda, reason="the split is the NumPy path")
@pytest.mark.parametrize("shapes", [((300,), (300, 2000)), ((2000, 300), (300,)), ((0, 3000), (3000, 2000))],
                         ids=["vector-times-matrix", "matrix-times-vector", "empty-batch"])
def test_vectors_and_empty_batches_multiply_as_numpy_does(monkeypatch, shapes):
    """Operands the split does not cut (a 1-d one, no rows) are one NumPy call, as before the split existed."""
    monkeypatch.setattr(parallel, "ownsBlas", True)
    monkeypatch.setattr(parallel, "workers", 2)
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal(shape).astype(np.float32) for shape in shapes)
    np.testing.assert_array_equal(gemm.matmul(a, b), np.matmul(a, b))
