import pytest

from macrobatch.optimizers.schedules.cosinedecay import CosineDecay
from macrobatch.optimizers.schedules.exponentialdecay import ExponentialDecay
from macrobatch.optimizers.schedules.reduceonplateau import ReduceOnPlateau
from macrobatch.optimizers.schedules.stepdecay import StepDecay
from macrobatch.optimizers.schedules.linearwarmup import LinearWarmup
from macrobatch.optimizers.sgd import SGD


def warmupThen(lrs, opt, warmupSteps, startFactor, then):
    """torch's warmup: LinearLR, then (SequentialLR at milestone warmupSteps) the scheduler then(opt)."""
    warmup = lrs.LinearLR(opt, start_factor=startFactor, total_iters=warmupSteps)
    return lrs.SequentialLR(opt, [warmup, then(opt)], milestones=[warmupSteps])


def test_linear_warmup_alone_matches_torch_linear_lr(optimizer, torchParity):
    rates = torchParity(LinearWarmup(optimizer, 10, startFactor=0.25),
                        lambda lrs, opt: lrs.LinearLR(opt, start_factor=0.25, total_iters=10))
    assert rates[0] == 0.025 and rates[10:] == [0.1] * 30


@pytest.mark.parametrize("startFactor", [0.01, 0.5])
def test_linear_warmup_then_cosine_matches_torch_sequential_lr(optimizer, torchParity, startFactor):
    schedule = LinearWarmup(optimizer, 8, after=CosineDecay(optimizer, 30), startFactor=startFactor)
    torchParity(schedule, lambda lrs, opt: warmupThen(lrs, opt, 8, startFactor, lambda o: lrs.CosineAnnealingLR(o, 30)),
                steps=39)


def test_linear_warmup_then_step_decay_matches_torch_sequential_lr(optimizer, torchParity):
    schedule = LinearWarmup(optimizer, 5, after=StepDecay(optimizer, 6, gamma=0.5, per="batch"), startFactor=0.2)
    torchParity(schedule, lambda lrs, opt: warmupThen(lrs, opt, 5, 0.2, lambda o: lrs.StepLR(o, 6, gamma=0.5)))


def test_linear_warmup_per_epoch_then_exponential_matches_torch_sequential_lr(optimizer, torchParity):
    schedule = LinearWarmup(optimizer, 4, after=ExponentialDecay(optimizer, 0.8), per="epoch", startFactor=0.1)
    torchParity(schedule, lambda lrs, opt: warmupThen(lrs, opt, 4, 0.1, lambda o: lrs.ExponentialLR(o, 0.8)))


def test_linear_warmup_from_zero_ramps_linearly_to_the_base_rate(optimizer, drive):
    rates = drive(LinearWarmup(optimizer, 4), 7)
    assert rates == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rel=1e-15)
    assert rates[0] == 0.0


def test_linear_warmup_sets_the_first_rate_at_construction():
    optimizer = SGD(0.2)
    LinearWarmup(optimizer, 10, startFactor=0.5)
    assert optimizer.learnRate == 0.1


def test_after_built_on_nothing_is_attached_by_the_warmup(optimizer, drive):
    after = StepDecay(None, 2, gamma=0.5, per="batch")
    schedule = LinearWarmup(optimizer, 2, after=after)
    assert after.optimizer is optimizer and after.baseRate == 0.1
    assert drive(schedule, 7) == [0.0, 0.05, 0.1, 0.1, 0.05, 0.05, 0.025]


def test_warmup_ramps_to_the_base_rate_of_an_after_that_changed_the_rate_first(optimizer, drive):
    # after is built (and attached) first and sets the rate to its own start, 0.1 * 0.5.
    schedule = LinearWarmup(optimizer, 2, after=LinearWarmup(optimizer, 2, startFactor=0.5))
    assert schedule.baseRate == 0.1
    assert drive(schedule, 6) == pytest.approx([0.0, 0.05, 0.05, 0.075, 0.1, 0.1], rel=1e-15)


def test_rate_at_past_the_warmup_is_afters_rate_counted_from_the_end_of_the_warmup(optimizer):
    after = CosineDecay(optimizer, 10)
    schedule = LinearWarmup(optimizer, 3, after=after)
    assert [schedule.rateAt(t) for t in range(3, 14)] == [after.rateAt(t) for t in range(11)]


def test_per_batch_warmup_hands_over_to_a_per_epoch_step_decay_counting_epochs_after_the_warmup(optimizer):
    schedule = LinearWarmup(optimizer, 3, after=StepDecay(optimizer, 1, gamma=0.5))
    rates = []
    for _ in range(3):
        for _ in range(2):
            rates.append(optimizer.learnRate)
            schedule.stepBatch()
        schedule.stepEpoch()
    # Epoch 0's end falls inside the warmup and is not counted; epoch 1's is the first after it.
    assert rates == [0.0, 0.1 / 3, 0.2 / 3, 0.1, 0.05, 0.05]
    assert schedule.after.steps == 2


def test_per_batch_warmup_then_plateau_ignores_metrics_during_the_warmup(optimizer):
    plateau = ReduceOnPlateau(optimizer, patience=0, factor=0.5)
    schedule = LinearWarmup(optimizer, 5, after=plateau)
    for _ in range(2):
        schedule.stepBatch()
        schedule.stepBatch()
        schedule.stepEpoch({"val_loss": 1.0})
    assert plateau.steps == 0 and optimizer.learnRate == pytest.approx(0.08)
    schedule.stepBatch()
    assert optimizer.learnRate == 0.1
    schedule.stepEpoch({"val_loss": 1.0})
    schedule.stepEpoch({"val_loss": 1.0})
    assert plateau.steps == 2 and optimizer.learnRate == 0.05


def test_warmup_state_round_trip_resumes_inside_after(optimizer, drive):
    schedule = LinearWarmup(optimizer, 5, after=CosineDecay(None, 20), startFactor=0.1)
    drive(schedule, 9)
    state = schedule.getState()
    resumed = SGD(0.1)
    twin = LinearWarmup(resumed, 5, after=CosineDecay(None, 20), startFactor=0.1)
    twin.setState(state)
    assert resumed.learnRate == optimizer.learnRate and twin.after.steps == 4
    assert drive(twin, 20) == drive(schedule, 20)


def test_after_driving_another_optimizer_is_refused(optimizer):
    with pytest.raises(ValueError, match="LinearWarmup: after drives another optimizer"):
        LinearWarmup(optimizer, 3, after=CosineDecay(SGD(0.1), 10))


def test_after_must_be_a_schedule(optimizer):
    with pytest.raises(TypeError, match="LinearWarmup: after must be a Schedule, got function"):
        LinearWarmup(optimizer, 3, after=lambda step: 0.1)


@pytest.mark.parametrize("warmupSteps", [0, -2, 3.0])
def test_linear_warmup_rejects_bad_warmup_steps(optimizer, warmupSteps):
    with pytest.raises(ValueError, match="LinearWarmup: warmupSteps must be an integer >= 1"):
        LinearWarmup(optimizer, warmupSteps)


@pytest.mark.parametrize("startFactor", [-0.1, 1.0, 2.0])
def test_linear_warmup_rejects_a_start_factor_outside_zero_to_one(optimizer, startFactor):
    with pytest.raises(ValueError, match=r"LinearWarmup: startFactor must be in \[0, 1\)"):
        LinearWarmup(optimizer, 3, startFactor=startFactor)


def test_linear_warmup_rejects_an_unknown_unit(optimizer):
    with pytest.raises(ValueError, match="LinearWarmup: per must be 'batch' or 'epoch'"):
        LinearWarmup(optimizer, 3, per="epochs")
