import numpy as np
import pytest

from macrobatch.costs.kldivergence import KLDivergence
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import LabelError, ShapeError
from macrobatch.engine.gradcheck import checkCostGrad


def logProbsAndTarget(shape=(4, 5), dtype=np.float32, seed=0):
    """Log-softmax predictions and target distributions with some exact zeros."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    logProbs = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    t = rng.random(shape) * (rng.random(shape) > 0.3)
    t[..., 0] += 0.1
    return logProbs.astype(dtype), (t / t.sum(axis=-1, keepdims=True)).astype(dtype)


def test_kldivergence_gradient_matches_finite_differences():
    pred, target = logProbsAndTarget(shape=(3, 2, 4), dtype=np.float64)
    assert (target == 0).any()
    checkCostGrad(KLDivergence(dtype=np.float64), pred, toDevice(target))


@pytest.mark.parametrize("shape", [(8, 5), (3, 2, 4)])
def test_kldivergence_matches_torch_kl_div_batchmean(shape):
    torch = pytest.importorskip("torch")
    pred, target = logProbsAndTarget(shape, seed=2)
    cost = KLDivergence()
    error, grad = cost(toDevice(pred), cost.prepareTarget(toDevice(target)))
    tx = torch.from_numpy(pred).requires_grad_()
    loss = torch.nn.functional.kl_div(tx, torch.from_numpy(target), reduction="batchmean")
    loss.backward()
    assert error.shape == () and error.dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(float(error), loss.item(), rtol=1e-5)
    np.testing.assert_allclose(toHost(grad), tx.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_kldivergence_is_zero_when_the_prediction_is_the_target():
    pred, target = logProbsAndTarget(seed=3)
    error, _ = KLDivergence()(toDevice(np.log(np.maximum(target, 1e-30)).astype(np.float32)), toDevice(target))
    assert abs(float(error)) < 1e-6


@pytest.mark.parametrize("value", [-0.1, 1.5, np.nan])
def test_prepare_target_rejects_values_that_are_not_probabilities(value):
    with pytest.raises(LabelError, match=r"KLDivergence: target .* at index \(1, 0\) is outside \[0, 1\]"):
        KLDivergence().prepareTarget(np.array([[0.5, 0.5], [value, 0.5]]))


def test_kldivergence_target_must_have_the_prediction_shape():
    with pytest.raises(ShapeError, match=r"KLDivergence: target of shape \(2, 4\) does not match"):
        KLDivergence()(toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((2, 4), np.float32)))
