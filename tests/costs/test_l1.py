import numpy as np
import pytest

from macrobatch.costs.l1 import L1
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkCostGrad


def predAndTarget(shape=(4, 3, 2), dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


def test_l1_gradient_matches_finite_differences():
    pred, target = predAndTarget(dtype=np.float64)
    checkCostGrad(L1(dtype=np.float64), pred, toDevice(target))


def test_l1_matches_torch_value_and_gradient_including_ties():
    torch = pytest.importorskip("torch")
    pred, target = predAndTarget(shape=(8, 5))
    target[0, :2] = pred[0, :2]  # where pred equals target both take the slope 0
    tx = torch.from_numpy(pred).requires_grad_()
    reference = torch.nn.functional.l1_loss(tx, torch.from_numpy(target))
    reference.backward()
    cost = L1()
    error, grad = cost(toDevice(pred), cost.prepareTarget(toDevice(target)))
    assert (error.shape, error.dtype, grad.dtype) == ((), np.float32, np.float32)
    np.testing.assert_allclose(float(error), reference.item(), rtol=1e-6)
    np.testing.assert_allclose(toHost(grad), tx.grad.numpy(), rtol=1e-6, atol=1e-9)
    assert (toHost(grad)[0, :2] == 0).all()


def test_l1_accumulates_the_mean_error_over_batches():
    pred, target = predAndTarget(shape=(6, 2))
    cost = L1()
    cost(toDevice(pred[:2]), toDevice(target[:2]))
    cost(toDevice(pred[2:]), toDevice(target[2:]))
    assert cost.getMetrics() == {"error": pytest.approx(np.abs(pred - target).mean(), rel=1e-6)}


def test_l1_target_must_have_the_prediction_shape_and_dtype():
    with pytest.raises(ShapeError, match=r"L1: target of shape \(3, 2\) does not match prediction of shape \(2, 3\)"):
        L1()(toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((3, 2), np.float32)))
    with pytest.raises(DtypeError, match=r"L1: target of dtype float64 does not match prediction of dtype float32"):
        L1()(toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((2, 3))))


def test_l1_rejects_a_non_float_dtype_and_unconvertible_targets():
    with pytest.raises(DtypeError, match="L1"):
        L1(dtype=np.int32)
    with pytest.raises(DtypeError, match=r"L1: targets of dtype <U1 cannot be used as float32"):
        L1().prepareTarget(np.array(["a"]))
