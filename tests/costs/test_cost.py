"""The accumulator every cost shares: error as the mean over samples seen, accuracy, reset."""
import math

import numpy as np
import pytest

from macrobatch.costs.bce import BCE
from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.costs.mse import MSE
from macrobatch.engine.backend import isDeviceArray, toDevice


def batchesFor(cost, sizes, rng):
    """(pred, target) host batches of the given sizes, each of a kind the cost takes."""
    out = []
    for size in sizes:
        if isinstance(cost, CrossEntropy):
            out.append((rng.standard_normal((size, 4)).astype(np.float32), rng.integers(0, 4, size).astype(np.int32)))
        else:
            target = rng.random((size, 3, 2)) if isinstance(cost, BCE) else rng.standard_normal((size, 3, 2))
            out.append((rng.standard_normal((size, 3, 2)).astype(np.float32), target.astype(np.float32)))
    return out


@pytest.mark.parametrize("Cost", [CrossEntropy, BCE, MSE])
def test_accumulated_error_over_batches_of_different_sizes_equals_the_error_of_their_concatenation(Cost):
    cost = Cost()
    batches = batchesFor(cost, (3, 5, 1, 7), np.random.default_rng(0))
    for pred, target in batches:
        cost(toDevice(pred), toDevice(target))
    whole = float(Cost().validate(toDevice(np.concatenate([p for p, _ in batches])),
                                  toDevice(np.concatenate([t for _, t in batches]))))
    assert cost.accumCount == 16
    assert cost.getError() == pytest.approx(whole, rel=1e-6)


@pytest.mark.parametrize("Cost", [CrossEntropy, BCE, MSE])
def test_validate_accumulates_like_a_training_call(Cost):
    trained, validated = Cost(), Cost()
    for pred, target in batchesFor(trained, (2, 4), np.random.default_rng(1)):
        trained(toDevice(pred), toDevice(target))
        validated.validate(toDevice(pred), toDevice(target))
    assert trained.getMetrics() == validated.getMetrics()


def test_error_and_accuracy_are_nan_before_any_batch():
    metrics = CrossEntropy().getMetrics()
    assert math.isnan(metrics["error"]) and math.isnan(metrics["accuracy"])


def test_accuracy_accumulates_over_batches_of_different_sizes():
    cost = CrossEntropy()
    eye = np.eye(3, dtype=np.float32)
    cost(toDevice(eye), toDevice(np.array([0, 1, 0], np.int32)))  # 2 of 3 right
    cost(toDevice(eye[:1]), toDevice(np.array([0], np.int32)))  # 1 of 1 right
    assert cost.getMetrics()["accuracy"] == pytest.approx(3 / 4)


def test_accumulators_stay_on_the_device():
    cost = CrossEntropy()
    cost(toDevice(np.eye(2, dtype=np.float32)), toDevice(np.array([0, 1], np.int32)))
    assert isDeviceArray(cost.accumErr) and isDeviceArray(cost.accumCorrect)


@pytest.mark.parametrize("Cost", [CrossEntropy, BCE])
def test_reset_accumulator_clears_error_and_accuracy(Cost):
    cost = Cost()
    for pred, target in batchesFor(cost, (4,), np.random.default_rng(2)):
        cost(toDevice(pred), toDevice(target))
    cost.resetAccumulator()
    assert cost.accumCount == 0 and cost.accumJudged == 0
    assert all(math.isnan(value) for value in cost.getMetrics().values())
    pred, target = batchesFor(cost, (1,), np.random.default_rng(3))[0]
    error = float(cost.validate(toDevice(pred), toDevice(target)))
    assert cost.getError() == pytest.approx(error, rel=1e-6)
