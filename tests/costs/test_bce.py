import numpy as np
import pytest

from macrobatch.costs.bce import BCE
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, LabelError, ShapeError
from macrobatch.engine.gradcheck import checkCostGrad


def logitsAndTargets(shape=(4, 3, 2), dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (3 * rng.standard_normal(shape)).astype(dtype), rng.random(shape).astype(dtype)


def torchReference(logits, targets):
    torch = pytest.importorskip("torch")
    tx = torch.from_numpy(logits).requires_grad_()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.from_numpy(targets))
    loss.backward()
    return loss.item(), tx.grad.numpy()


def test_bce_gradient_matches_finite_differences():
    logits, targets = logitsAndTargets(dtype=np.float64)
    checkCostGrad(BCE(), logits, toDevice(targets))


def test_bce_matches_torch_value_and_gradient():
    logits, targets = logitsAndTargets(shape=(8, 5))
    cost = BCE()
    error, grad = cost(toDevice(logits), cost.prepareTarget(toDevice(targets)))
    refError, refGrad = torchReference(logits, targets)
    assert error.shape == () and error.dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(float(error), refError, rtol=1e-6)
    np.testing.assert_allclose(toHost(grad), refGrad, rtol=1e-5, atol=1e-9)


def test_bce_stays_finite_and_matches_torch_on_huge_logits():
    logits = np.array([[1e4, -1e4, 0], [-1e4, 1e4, -30]], np.float32)
    targets = np.array([[1, 0, 0.5], [0.25, 0.75, 1]], np.float32)
    error, grad = BCE()(toDevice(logits), toDevice(targets))
    refError, refGrad = torchReference(logits, targets)
    assert np.isfinite(float(error)) and np.isfinite(toHost(grad)).all()
    np.testing.assert_allclose(float(error), refError, rtol=1e-6)
    np.testing.assert_allclose(toHost(grad), refGrad, rtol=1e-5, atol=1e-12)


def test_bce_counts_elements_where_the_logit_sign_matches_the_rounded_target():
    logits = np.array([[2, -1], [-3, 0.5], [1, 1]], np.float32)
    targets = np.array([[1, 0], [0.7, 0.2], [0.9, 0.4]], np.float32)
    cost = BCE()
    cost(toDevice(logits), toDevice(targets))
    assert cost.getMetrics()["accuracy"] == pytest.approx(3 / 6)


def test_prepare_target_converts_to_float32_by_default():
    targets = BCE().prepareTarget(np.array([[0, 1], [1, 0]], np.uint8))
    assert targets.dtype == np.float32 and isinstance(targets, np.ndarray)
    np.testing.assert_array_equal(targets, [[0, 1], [1, 0]])


def test_prepare_target_converts_to_the_dtype_given():
    assert BCE(dtype=np.float64).prepareTarget(np.array([0.5], np.float32)).dtype == np.float64


def test_prepare_target_rejects_values_outside_the_unit_interval_naming_value_and_index():
    with pytest.raises(LabelError, match=r"target 1\.5 at index \(1, 0\) is outside \[0, 1\]"):
        BCE().prepareTarget(np.array([[0, 1], [1.5, -1]]))
    with pytest.raises(LabelError, match=r"target -0\.25 at index 2 is outside \[0, 1\]"):
        BCE().prepareTarget(np.array([0, 1, -0.25]))
    with pytest.raises(LabelError, match=r"target nan at index 0 is outside \[0, 1\]"):
        BCE().prepareTarget(np.array([np.nan, 1]))


def test_prepare_target_rejects_targets_that_are_not_numbers():
    with pytest.raises(DtypeError, match=r"targets of dtype <U1 cannot be used as float32"):
        BCE().prepareTarget(np.array(["a", "b"]))


def test_bce_refuses_a_dtype_that_is_not_floating():
    with pytest.raises(DtypeError, match=r"BCE: expected a floating dtype"):
        BCE(dtype=np.int32)


def test_target_must_have_the_prediction_shape():
    with pytest.raises(ShapeError, match=r"target of shape \(2, 3\) does not match prediction of shape \(2, 4\)"):
        BCE()(toDevice(np.zeros((2, 4), np.float32)), toDevice(np.zeros((2, 3), np.float32)))


def test_target_must_have_the_prediction_dtype():
    with pytest.raises(DtypeError, match=r"target of dtype float64 does not match prediction of dtype float32"):
        BCE()(toDevice(np.zeros((2, 4), np.float32)), toDevice(np.zeros((2, 4), np.float64)))
