import numpy as np
import pytest

from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.costs.mse import MSE
from macrobatch.costs.multi import Multi
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import LabelError, ShapeError
from macrobatch.engine.gradcheck import numericGrad


def outputs(dtype=np.float32, seed=0):
    """Device predictions and targets for Multi(CrossEntropy(), MSE())."""
    rng = np.random.default_rng(seed)
    logits, labels = rng.standard_normal((4, 3)).astype(dtype), rng.integers(0, 3, 4).astype(np.int32)
    values, targets = rng.standard_normal((4, 2)).astype(dtype), rng.standard_normal((4, 2)).astype(dtype)
    return [toDevice(logits), toDevice(values)], [toDevice(labels), toDevice(targets)]


def test_multi_gradients_match_finite_differences_for_every_output():
    pred, target = outputs(np.float64)
    cost = Multi(CrossEntropy(), MSE(dtype=np.float64), weights=[0.7, 2.0])
    _, grads = cost(pred, target)
    grads = [toHost(g).copy() for g in grads]
    for i, p in enumerate(pred):
        numeric = numericGrad(lambda: cost(pred, target)[0], p)
        np.testing.assert_allclose(grads[i], numeric, rtol=1e-5, atol=1e-7, err_msg=f"output {i}")


def test_multi_is_the_weighted_sum_of_its_costs_and_reports_each():
    pred, target = outputs()
    cost = Multi(CrossEntropy(), MSE(), weights=[0.7, 2.0])
    error, grads = cost(pred, cost.prepareTarget(target))
    ceError, ceGrad = CrossEntropy()(pred[0], target[0])
    mseError, mseGrad = MSE()(pred[1], target[1])
    assert float(error) == pytest.approx(0.7 * float(ceError) + 2.0 * float(mseError), rel=1e-6)
    np.testing.assert_allclose(toHost(grads[0]), 0.7 * toHost(ceGrad), rtol=1e-6)
    np.testing.assert_allclose(toHost(grads[1]), 2.0 * toHost(mseGrad), rtol=1e-6)
    metrics = cost.getMetrics()
    assert list(metrics) == ["error", "0.error", "0.accuracy", "1.error"]
    assert metrics["error"] == pytest.approx(float(error), rel=1e-6)
    assert metrics["1.error"] == pytest.approx(float(mseError), rel=1e-6)


def test_multi_reset_and_accumulator_reach_every_cost():
    pred, target = outputs()
    cost = Multi(CrossEntropy(), MSE())
    cost(pred, target)
    saved = cost.getAccumulator()
    cost.resetAccumulator()
    assert all(np.isnan(v) for v in cost.getMetrics().values())
    cost.setAccumulator(saved)
    assert cost.costs[0].accumCount == 4 and not np.isnan(cost.getMetrics()["0.accuracy"])


def test_multi_prepares_each_target_with_its_cost():
    cost = Multi(CrossEntropy(), MSE())
    labels, values = cost.prepareTarget([np.array([0.0, 2.0]), np.array([[1, 2]])])
    assert labels.dtype == np.int32 and values.dtype == np.float32
    with pytest.raises(LabelError, match="CrossEntropy: label -1 at index 0 is negative"):
        cost.prepareTarget([np.array([-1]), np.zeros((1, 1))])


def test_multi_rejects_lists_of_the_wrong_length():
    pred, target = outputs()
    with pytest.raises(ShapeError, match=r"Multi: expected a list of 2 predictions, one per cost, got a list of 1"):
        Multi(CrossEntropy(), MSE())(pred[:1], target)
    with pytest.raises(ShapeError, match=r"Multi: expected a list of 2 targets, one per cost, got ndarray"):
        Multi(CrossEntropy(), MSE())(pred, target[0])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"weights": [1.0]}, ValueError, r"Multi: 1 weights for 2 costs"),
    ({"weights": [1.0, -1.0]}, ValueError, r"Multi: weight -1.0 of cost 1 is not a finite number >= 0")])
def test_multi_rejects_bad_weights(kwargs, error, message):
    with pytest.raises(error, match=message):
        Multi(CrossEntropy(), MSE(), **kwargs)


def test_multi_needs_costs():
    with pytest.raises(TypeError, match="Multi: expected one or more Cost instances"):
        Multi("mse")


def test_multi_reports_a_bad_label_of_any_cost_at_its_own_reads():
    """At the call on the CPU; on the GPU, where CrossEntropy checks labels given straight on the device,
    at the next checkTargets or getError of the Multi."""
    pred, target = outputs()
    target[0] = toDevice(np.array([0, 1, 3, 2], np.int32))
    cost = Multi(CrossEntropy(), MSE())
    for read in (cost.checkTargets, cost.getError):
        with pytest.raises(LabelError, match=r"CrossEntropy: label 3 is out of range for 3 classes"):
            cost(pred, target)
            read()
        cost.resetAccumulator()


def test_multi_prepare_target_names_the_target_a_cost_refused():
    cost = Multi(MSE(), CrossEntropy())
    with pytest.raises(LabelError, match=r"^target\[1\]: CrossEntropy: label 0.5 at index 1 is not an integer"):
        cost.prepareTarget([np.zeros((2, 1)), np.array([1.0, 0.5])])
