import numpy as np
import pytest

from macrobatch.costs.smoothl1 import SmoothL1
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkCostGrad


def predAndTarget(shape=(4, 3, 2), dtype=np.float32, seed=0):
    """Differences spread over both sides of beta, none within 1e-3 of a kink (finite differences)."""
    rng = np.random.default_rng(seed)
    pred = rng.standard_normal(shape) * 2
    target = rng.standard_normal(shape)
    return pred.astype(dtype), target.astype(dtype)


@pytest.mark.parametrize("beta", [1.0, 0.3, 0.0])
def test_smoothl1_gradient_matches_finite_differences(beta):
    pred, target = predAndTarget(dtype=np.float64)
    d = np.abs(pred - target)
    assert (d > beta).any() and np.abs(d - beta).min() > 1e-3
    assert beta == 0 or (d < beta).any()
    checkCostGrad(SmoothL1(beta, dtype=np.float64), pred, toDevice(target))


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.5, 0.0])
def test_smoothl1_matches_torch_value_and_gradient(beta):
    torch = pytest.importorskip("torch")
    pred, target = predAndTarget(shape=(8, 5), seed=1)
    cost = SmoothL1(beta)
    error, grad = cost(toDevice(pred), cost.prepareTarget(toDevice(target)))
    tx = torch.from_numpy(pred).requires_grad_()
    loss = torch.nn.functional.smooth_l1_loss(tx, torch.from_numpy(target), beta=beta)
    loss.backward()
    assert error.shape == () and error.dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(float(error), loss.item(), rtol=1e-6)
    np.testing.assert_allclose(toHost(grad), tx.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_smoothl1_is_half_the_square_inside_beta_and_shifted_absolute_outside():
    cost = SmoothL1(beta=2.0)
    error, _ = cost(toDevice(np.array([[1.0, 5.0]], np.float32)), toDevice(np.zeros((1, 2), np.float32)))
    assert float(error) == pytest.approx((0.5 * 1 / 2 + (5 - 1)) / 2)


@pytest.mark.parametrize("beta", [-1.0, float("nan"), float("inf")])
def test_smoothl1_rejects_a_bad_beta(beta):
    with pytest.raises(ValueError, match="SmoothL1: beta must be finite and >= 0"):
        SmoothL1(beta)


def test_smoothl1_target_must_have_the_prediction_shape():
    with pytest.raises(ShapeError, match=r"SmoothL1: target of shape \(3,\) does not match"):
        SmoothL1()(toDevice(np.zeros((2,), np.float32)), toDevice(np.zeros((3,), np.float32)))
