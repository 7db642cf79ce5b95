import math

import numpy as np
import pytest

from macrobatch.optimizers.schedules.reduceonplateau import ReduceOnPlateau
from macrobatch.optimizers.sgd import SGD


def noisyPlateaus(epochs=60, seed=3):
    """A validation curve that improves, flattens, improves again: noise around a staircase."""
    rng = np.random.default_rng(seed)
    level = np.repeat([1.0, 0.6, 0.5, 0.45], -(-epochs // 4))[:epochs]
    values = level * (1.0 + 0.02 * rng.standard_normal(epochs))
    return [{"loss": 2.0 * v, "val_loss": v, "val_accuracy": 1.0 - v} for v in values.tolist()]


# (our arguments, torch's), the same settings.
CASES = {
    "defaults": ({}, {}),
    "short patience": ({"patience": 2, "factor": 0.5}, {"patience": 2, "factor": 0.5}),
    "cooldown": ({"patience": 1, "factor": 0.5, "cooldown": 3}, {"patience": 1, "factor": 0.5, "cooldown": 3}),
    "floor": ({"patience": 0, "factor": 0.3, "minRate": 0.004}, {"patience": 0, "factor": 0.3, "min_lr": 0.004}),
    "coarse threshold": ({"patience": 1, "threshold": 0.05}, {"patience": 1, "threshold": 0.05}),
}


@pytest.mark.parametrize("case", CASES)
def test_reduce_on_plateau_minimising_matches_torch(optimizer, torchParity, case):
    ours, theirs = CASES[case]
    rates = torchParity(ReduceOnPlateau(optimizer, **ours), lambda lrs, opt: lrs.ReduceLROnPlateau(opt, **theirs),
                        steps=60, metrics=noisyPlateaus())
    assert rates[-1] < rates[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_reduce_on_plateau_maximising_accuracy_matches_torch(optimizer, torchParity, seed):
    schedule = ReduceOnPlateau(optimizer, monitor="val_accuracy", mode="max", patience=3, factor=0.5, cooldown=1)
    rates = torchParity(schedule, lambda lrs, opt: lrs.ReduceLROnPlateau(opt, mode="max", patience=3, factor=0.5,
                                                                         cooldown=1),
                        steps=60, metrics=noisyPlateaus(seed=seed))
    assert rates[-1] < rates[0]


def test_reduce_on_plateau_cuts_after_more_than_patience_bad_epochs(optimizer):
    schedule = ReduceOnPlateau(optimizer, patience=2, factor=0.5)
    rates = []
    for value in [1.0, 0.9, 0.95, 0.9, 0.9, 0.8, 0.8]:
        schedule.stepEpoch({"val_loss": value})
        rates.append(optimizer.learnRate)
    # bad epochs after 0.9: 0.95, 0.9, 0.9 (equal is not better) -> the third one cuts.
    assert rates == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05]


def test_reduce_on_plateau_needs_a_relative_improvement_above_the_threshold(optimizer):
    schedule = ReduceOnPlateau(optimizer, patience=0, threshold=0.1)
    schedule.stepEpoch({"val_loss": 1.0})
    schedule.stepEpoch({"val_loss": 0.91})
    assert optimizer.learnRate == pytest.approx(0.01) and schedule.best == 1.0


def test_reduce_on_plateau_never_goes_below_the_minimum_rate(optimizer):
    schedule = ReduceOnPlateau(optimizer, patience=0, factor=0.1, minRate=0.003)
    for _ in range(6):
        schedule.stepEpoch({"val_loss": 1.0})
    assert optimizer.learnRate == 0.003


def test_reduce_on_plateau_ignores_step_batch(optimizer):
    schedule = ReduceOnPlateau(optimizer, patience=0)
    for _ in range(50):
        schedule.stepBatch()
    assert optimizer.learnRate == 0.1 and schedule.steps == 0


def test_a_missing_monitored_metric_is_a_key_error_listing_the_metrics(optimizer):
    schedule = ReduceOnPlateau(optimizer)
    with pytest.raises(KeyError, match=r"monitors 'val_loss', but the epoch's metrics hold \['accuracy', 'error'\]"):
        schedule.stepEpoch({"error": 0.3, "accuracy": 0.9})
    with pytest.raises(KeyError, match="monitors 'val_loss', but the epoch's metrics hold nothing"):
        schedule.stepEpoch()
    assert schedule.steps == 0


def test_a_nan_metric_counts_as_a_bad_epoch(optimizer):
    schedule = ReduceOnPlateau(optimizer, patience=1)
    for value in [1.0, math.nan, math.nan]:
        schedule.stepEpoch({"val_loss": value})
    assert optimizer.learnRate == pytest.approx(0.01) and schedule.best == 1.0


def test_reduce_on_plateau_state_round_trip_resumes_inside_a_cooldown(optimizer, drive):
    metrics = noisyPlateaus()
    schedule = ReduceOnPlateau(optimizer, patience=1, factor=0.5, cooldown=4)
    drive(schedule, 20, metrics[:20])
    assert schedule.cooldownLeft > 0
    resumed = SGD(0.1)
    twin = ReduceOnPlateau(resumed, patience=1, factor=0.5, cooldown=4)
    twin.setState(schedule.getState())
    assert resumed.learnRate == optimizer.learnRate < 0.1
    assert drive(twin, 40, metrics[20:]) == drive(schedule, 40, metrics[20:])


def test_restored_reduce_on_plateau_judges_the_next_epoch_against_the_restored_best(optimizer):
    schedule = ReduceOnPlateau(optimizer, patience=1)
    schedule.stepEpoch({"val_loss": 0.5})
    schedule.stepEpoch({"val_loss": 0.7})
    resumed = SGD(0.1)
    twin = ReduceOnPlateau(resumed, patience=1)
    twin.setState(schedule.getState())
    twin.stepEpoch({"val_loss": 0.6})
    assert twin.best == 0.5 and resumed.learnRate == pytest.approx(0.01)


@pytest.mark.parametrize("mode", ["mean", "MIN", None])
def test_reduce_on_plateau_rejects_a_mode_other_than_min_or_max(optimizer, mode):
    with pytest.raises(ValueError, match="ReduceOnPlateau: mode must be 'min' or 'max'"):
        ReduceOnPlateau(optimizer, mode=mode)


@pytest.mark.parametrize("name, value, message", [
    ("factor", 1.0, r"factor must be in \(0, 1\)"),
    ("factor", 0.0, r"factor must be in \(0, 1\)"),
    ("patience", -1, "patience must be an integer >= 0"),
    ("patience", 2.5, "patience must be an integer >= 0"),
    ("cooldown", -3, "cooldown must be an integer >= 0"),
    ("threshold", -1e-4, "threshold must be >= 0"),
    ("minRate", -0.1, "minRate must be >= 0"),
])
def test_reduce_on_plateau_rejects_bad_arguments(optimizer, name, value, message):
    with pytest.raises(ValueError, match=f"ReduceOnPlateau: {message}"):
        ReduceOnPlateau(optimizer, **{name: value})
