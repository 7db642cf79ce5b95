"""The Schedule protocol every schedule shares: attaching, units, stepping and state."""
import numbers

import h5py
import numpy as np
import pytest

from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.engine import serialize
from macrobatch.engine.backend import toDevice
from macrobatch.handlers.trainer import Trainer
from macrobatch.modules.linear import Linear
from macrobatch.optimizers.schedules.cosinedecay import CosineDecay
from macrobatch.optimizers.schedules.exponentialdecay import ExponentialDecay
from macrobatch.optimizers.schedules.reduceonplateau import ReduceOnPlateau
from macrobatch.optimizers.schedules.schedule import Schedule
from macrobatch.optimizers.schedules.stepdecay import StepDecay
from macrobatch.optimizers.schedules.linearwarmup import LinearWarmup
from macrobatch.optimizers.sgd import SGD

# Each builds a schedule on optimizer (or on None); all of them change the rate within 30 steps.
BUILDERS = {
    "StepDecay": lambda opt: StepDecay(opt, 4, gamma=0.5),
    "StepDecay per batch": lambda opt: StepDecay(opt, 3, per="batch"),
    "ExponentialDecay": lambda opt: ExponentialDecay(opt, 0.9),
    "CosineDecay": lambda opt: CosineDecay(opt, 25, minRate=1e-3),
    "LinearWarmup": lambda opt: LinearWarmup(opt, 6, startFactor=0.1),
    "LinearWarmup then CosineDecay": lambda opt: LinearWarmup(opt, 6, after=CosineDecay(None, 20)),
    "LinearWarmup then ReduceOnPlateau": lambda opt: LinearWarmup(opt, 3, per="epoch",
                                                                  after=ReduceOnPlateau(None, patience=1, factor=0.5,
                                                                                        cooldown=2)),
    "ReduceOnPlateau": lambda opt: ReduceOnPlateau(opt, patience=1, factor=0.5, cooldown=2),
}
PURE = [name for name in BUILDERS if "ReduceOnPlateau" not in name]


def epochMetrics(epochs=60):
    """A validation error that stalls in stretches, so that ReduceOnPlateau cuts the rate."""
    values = np.maximum(0.1, 1.0 - 0.05 * (np.arange(epochs) // 4) * 4) + 0.001 * np.cos(np.arange(epochs))
    return [{"val_loss": v, "error": v / 2} for v in values.tolist()]


def isPlain(value):
    if isinstance(value, dict):
        return all(isinstance(k, str) and isPlain(v) for k, v in value.items())
    return value is None or isinstance(value, (str, numbers.Real)) and type(value).__module__ == "builtins"


@pytest.mark.parametrize("name", BUILDERS)
def test_schedule_attached_later_gives_the_rates_of_one_built_on_the_optimizer(drive, name):
    built = BUILDERS[name](SGD(0.1))
    later = BUILDERS[name](None)
    assert later.optimizer is None and later.baseRate is None
    later.attach(SGD(0.1))
    metrics = epochMetrics(30)
    assert drive(later, 30, metrics) == drive(built, 30, metrics)


@pytest.mark.parametrize("name", BUILDERS)
def test_state_round_trip_continues_with_identical_rates(drive, name):
    metrics = epochMetrics()
    optimizer = SGD(0.1)
    schedule = BUILDERS[name](optimizer)
    before = drive(schedule, 13, metrics[:13])
    state = schedule.getState()
    resumed = SGD(0.1)
    twin = BUILDERS[name](resumed)
    twin.setState(state)
    assert resumed.learnRate == optimizer.learnRate
    after = drive(twin, 30, metrics[13:43])
    assert after == drive(schedule, 30, metrics[13:43])
    assert len(set(before + after)) > 1


@pytest.mark.parametrize("name", BUILDERS)
def test_state_holds_only_plain_python_values(drive, name):
    schedule = BUILDERS[name](SGD(0.1))
    drive(schedule, 10, epochMetrics(10))
    state = schedule.getState()
    assert isPlain(state), state
    assert state["schedule"] == type(schedule).__name__ and state["baseRate"] == 0.1


def test_state_set_before_attaching_keeps_the_restored_base_rate(drive):
    schedule = StepDecay(SGD(0.4), 2, per="batch")
    drive(schedule, 5)
    twin = StepDecay(None, 2, per="batch")
    twin.setState(schedule.getState())
    optimizer = SGD(0.1)
    twin.attach(optimizer)
    assert twin.baseRate == 0.4 and optimizer.learnRate == pytest.approx(0.004)


def test_set_state_refuses_another_schedules_state():
    state = StepDecay(SGD(0.1), 2).getState()
    with pytest.raises(ValueError, match="ExponentialDecay.setState: the state is of a StepDecay"):
        ExponentialDecay(SGD(0.1), 0.9).setState(state)


@pytest.mark.parametrize("name", PURE)
def test_rate_at_is_a_pure_function_of_the_step_giving_the_driven_rates(drive, name):
    schedule = BUILDERS[name](SGD(0.1))
    expected = [schedule.rateAt(t) for t in range(30)]
    assert [schedule.rateAt(t) for t in range(30)] == expected and schedule.steps == 0
    assert drive(schedule, 30) == expected


def test_attaching_sets_the_base_rate_and_the_rate_of_step_zero():
    optimizer = SGD(0.3)
    schedule = LinearWarmup(None, 3)
    assert optimizer.learnRate == 0.3
    assert schedule.attach(optimizer) is schedule
    assert schedule.baseRate == 0.3 and optimizer.learnRate == 0.0


def test_per_epoch_schedule_ignores_step_batch_and_per_batch_schedule_ignores_step_epoch():
    perEpoch, perBatch = SGD(0.1), SGD(0.1)
    byEpoch, byBatch = ExponentialDecay(perEpoch, 0.5), ExponentialDecay(perBatch, 0.5, per="batch")
    for schedule in (byEpoch, byBatch):
        schedule.stepBatch()
        schedule.stepBatch()
        schedule.stepEpoch({"val_loss": 0.5})
    assert (byEpoch.steps, perEpoch.learnRate) == (1, 0.05)
    assert (byBatch.steps, perBatch.learnRate) == (2, 0.025)


@pytest.mark.parametrize("step", ["stepBatch", "stepEpoch"])
def test_stepping_an_unattached_schedule_is_an_error(step):
    schedule = LinearWarmup(None, 3, per="batch" if step == "stepBatch" else "epoch")
    with pytest.raises(RuntimeError, match="LinearWarmup is not attached to an optimizer"):
        getattr(schedule, step)()


def test_the_base_schedule_has_no_rate_of_its_own():
    with pytest.raises(NotImplementedError):
        Schedule(SGD(0.1))


def test_trainer_calling_step_batch_after_every_update_trains_each_batch_at_its_scheduled_rate():
    """The wiring fit uses: onBatchFinish runs after each update, so batch t trains at rateAt(t)."""
    net = Linear(4, 3)
    optimizer = SGD(0.5).setupOn(net)
    schedule = CosineDecay(optimizer, 10)
    used = []
    update = optimizer.update

    def recordingUpdate():
        used.append(optimizer.learnRate)
        update()

    optimizer.update = recordingUpdate
    trainer = Trainer(net, CrossEntropy(), optimizer, onBatchFinish=lambda handler: schedule.stepBatch(), batchsize=8)
    x = np.random.default_rng(0).standard_normal((56, 4)).astype(np.float32)
    y = np.arange(56, dtype=np.int32) % 3
    trainer.train(toDevice(x), toDevice(y))
    schedule.stepEpoch({"error": trainer.cost.getError()})
    assert used == [schedule.rateAt(t) for t in range(7)]
    assert schedule.steps == 7 and optimizer.learnRate == schedule.rateAt(7)


@pytest.mark.parametrize("name", BUILDERS)
def test_state_survives_the_checkpoint_serialiser(drive, name):
    metrics = epochMetrics()
    schedule = BUILDERS[name](SGD(0.1))
    drive(schedule, 13, metrics[:13])
    with h5py.File("state.h5", "w", driver="core", backing_store=False) as f:
        serialize.writeState(f.create_group("schedule"), schedule.getState())
        state = serialize.readState(f["schedule"])
    twin = BUILDERS[name](SGD(0.1))
    twin.setState(state)
    assert drive(twin, 30, metrics[13:43]) == drive(schedule, 30, metrics[13:43])
