import numpy as np
import pytest

from macrobatch.costs.mse import MSE
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkCostGrad


def predAndTarget(shape=(4, 3, 2), dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


def test_mse_gradient_matches_finite_differences():
    pred, target = predAndTarget(dtype=np.float64)
    checkCostGrad(MSE(), pred, toDevice(target))


def test_mse_matches_torch_value_and_gradient():
    torch = pytest.importorskip("torch")
    pred, target = predAndTarget(shape=(8, 5))
    cost = MSE()
    error, grad = cost(toDevice(pred), cost.prepareTarget(toDevice(target)))
    tx = torch.from_numpy(pred).requires_grad_()
    loss = torch.nn.functional.mse_loss(tx, torch.from_numpy(target))
    loss.backward()
    assert error.shape == () and error.dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(float(error), loss.item(), rtol=1e-6)
    np.testing.assert_allclose(toHost(grad), tx.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_mse_reports_only_the_error():
    pred, target = predAndTarget()
    cost = MSE()
    cost(toDevice(pred), toDevice(target))
    assert list(cost.getMetrics()) == ["error"]


def test_prepare_target_converts_to_float32_by_default():
    target = MSE().prepareTarget(np.array([[1, 2], [3, 4]], np.int64))
    assert target.dtype == np.float32 and isinstance(target, np.ndarray)
    np.testing.assert_array_equal(target, [[1, 2], [3, 4]])


def test_prepare_target_keeps_device_targets_on_the_device_in_the_dtype_given():
    target = toDevice(np.ones((2, 2), np.float32))
    prepared = MSE(dtype=np.float64).prepareTarget(target)
    assert type(prepared) is type(target) and prepared.dtype == np.float64


def test_target_must_have_the_prediction_shape():
    with pytest.raises(ShapeError, match=r"MSE: target of shape \(3, 2\) does not match prediction of shape \(2, 3\)"):
        MSE()(toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((3, 2), np.float32)))


def test_target_must_have_the_prediction_dtype():
    with pytest.raises(DtypeError, match=r"MSE: target of dtype float64 does not match prediction of dtype float32"):
        MSE()(toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((2, 3))))
