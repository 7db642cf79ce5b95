import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.softmax import SoftMax


def test_softmax_gradients_match_finite_differences():
    checkModuleGrads(SoftMax(), np.random.default_rng(0).standard_normal((3, 5)))


def test_softmax_over_image_maps_gradients_match_finite_differences():
    checkModuleGrads(SoftMax(), np.random.default_rng(0).standard_normal((2, 3, 2, 2)))


@pytest.mark.parametrize("shape", [(4, 7), (2, 5, 3, 4)])
def test_softmax_matches_torch_over_axis_one(shape):
    torch = pytest.importorskip("torch")
    x = (3 * np.random.default_rng(1).standard_normal(shape)).astype(np.float32)
    g = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.softmax(tx, dim=1)
    ty.backward(torch.from_numpy(g))
    mod = SoftMax()
    np.testing.assert_allclose(toHost(mod(toDevice(x))), ty.detach().numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(toHost(mod.backward(toDevice(g))), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_softmax_is_stable_for_huge_scores():
    y = toHost(SoftMax()(toDevice(np.array([[1000.0, 1000.0, -1000.0], [3e38, 0.0, 0.0]], np.float32))))
    np.testing.assert_allclose(y, [[0.5, 0.5, 0], [1, 0, 0]])


def test_softmax_rows_sum_to_one_and_keep_the_dtype():
    for dtype in (np.float16, np.float64):
        y = toHost(SoftMax()(toDevice(np.random.default_rng(0).standard_normal((4, 6)).astype(dtype))))
        assert y.dtype == dtype
        np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-3)


def test_softmax_rejects_input_without_a_class_axis():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, classes, \.\.\.\), got \(5,\)"):
        SoftMax()(toDevice(np.zeros(5, np.float32)))
