"""Drivers shared by the schedule tests: the learning rates a schedule gives step by step, and the
rates of a torch.optim.lr_scheduler twin driven the same way."""
import warnings

import numpy as np
import pytest

from macrobatch.optimizers.sgd import SGD

BASE_RATE = 0.1


def ourRates(schedule, steps, metrics=None):
    """Drive schedule like a training loop: per step of its unit, record optimizer.learnRate (the rate
    the update uses), then call stepBatch() for a per-batch schedule or, for a per-epoch one, three
    stepBatch() calls (which it must ignore) and stepEpoch(metrics[i])."""
    rates = []
    for i in range(steps):
        rates.append(schedule.optimizer.learnRate)
        if schedule.per == "batch":
            schedule.stepBatch()
        else:
            for _ in range(3):
                schedule.stepBatch()
            schedule.stepEpoch(None if metrics is None else metrics[i])
    return rates


def torchRates(makeScheduler, steps, values=None, base=BASE_RATE):
    """The rates of makeScheduler(torchOptimizer) over steps optimizer steps, each followed by
    scheduler.step() (scheduler.step(values[i]) when values are given)."""
    torch = pytest.importorskip("torch")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    with warnings.catch_warnings():
        # torch's SequentialLR passes the deprecated epoch argument to its schedulers itself.
        warnings.simplefilter("ignore", UserWarning)
        scheduler = makeScheduler(torch.optim.lr_scheduler, optimizer)
        rates = []
        for i in range(steps):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if values is None:
                scheduler.step()
            else:
                scheduler.step(values[i])
    return rates


def checkTorchParity(schedule, makeScheduler, steps=40, metrics=None):
    """schedule (attached to a fresh optimizer at BASE_RATE) and its torch twin give the same rates,
    up to the rounding of torch's recursive (chainable) formulas. With metrics (a list of per-epoch
    dicts), ours gets each dict and torch the monitored value alone."""
    values = None if metrics is None else [epoch[schedule.monitor] for epoch in metrics]
    theirs = torchRates(makeScheduler, steps, values)
    ours = ourRates(schedule, steps, metrics)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)
    return ours


@pytest.fixture
def optimizer():
    return SGD(BASE_RATE)


@pytest.fixture
def drive():
    return ourRates


@pytest.fixture
def torchParity():
    return checkTorchParity
