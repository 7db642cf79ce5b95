"""Schedule: the base of every learning-rate schedule.

A schedule is a function of its step counter (as in optax), ``rateAt(step)``, which it writes into
``optimizer.learnRate`` as the counter advances. The training loop calls ``stepBatch()`` after every
optimizer update and ``stepEpoch(metrics)`` at the end of every epoch; a schedule counts only its own
unit (``per``) and ignores the other call, so the loop never needs to know which unit a schedule uses.
"""
import numbers

from ...engine.checks import checkHyper
from ..optimizer import Optimizer

UNITS = ("batch", "epoch")


class Schedule:
    """Drives ``optimizer.learnRate`` from a step counter.

    optimizer: the Optimizer to drive, or None to ``attach(optimizer)`` later (a schedule built
    inside another, such as LinearWarmup's ``after``, is attached by the outer one). Attaching
    remembers the optimizer's learnRate as ``baseRate`` and sets learnRate to ``rateAt(0)``, the rate
    of the first step, before any update (as torch.optim.lr_scheduler does on construction).
    per: "batch" (the counter advances in ``stepBatch``) or "epoch" (in ``stepEpoch``).

    ``steps`` counts the steps of its unit taken so far; learnRate is always ``rateAt(steps)``.
    A subclass implements ``rateAt``; one that reacts to metrics overrides ``stepEpoch``.
    """

    # The same checks and messages as the optimizers' hyperparameters.
    checkHyper = checkHyper

    def __init__(self, optimizer=None, per="batch"):
        if per not in UNITS:
            raise ValueError(f"{type(self).__name__}: per must be 'batch' or 'epoch', got {per!r}")
        self.per = per
        self.steps = 0
        self.baseRate = None
        self.optimizer = None
        if optimizer is not None:
            self.attach(optimizer)

    def checkInt(self, name, value, low):
        """Return value as an int, or raise ValueError unless it is an integer >= low."""
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{type(self).__name__}: {name} must be an integer >= {low}, got {value!r}")
        return int(value)

    def attach(self, optimizer):
        """Drive optimizer from now on; baseRate is its learnRate unless setState already gave one."""
        self.optimizer = optimizer
        if self.baseRate is None:
            self.baseRate = optimizer.learnRate
        self.apply()
        return self

    def rateAt(self, step):
        """The learning rate for step ``step`` of this schedule's unit, counting from 0."""
        raise NotImplementedError

    def apply(self):
        if self.optimizer is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to an optimizer: "
                               "pass one to the constructor or call attach(optimizer)")
        self.optimizer.learnRate = self.rateAt(self.steps)

    def stepBatch(self):
        """Call after every optimizer update; advances a per-batch schedule."""
        if self.per == "batch":
            self.steps += 1
            self.apply()

    def stepEpoch(self, metrics=None):
        """Call at the end of every epoch with the epoch's metrics (e.g. {"val_loss": 0.3});
        advances a per-epoch schedule."""
        if self.per == "epoch":
            self.steps += 1
            self.apply()

    def getState(self):
        """Everything that changes while training, as plain Python values."""
        return {"schedule": type(self).__name__, "steps": self.steps, "baseRate": self.baseRate}

    def setState(self, state):
        """Continue from getState()'s state, on a schedule built with the same arguments; when
        attached, learnRate is set to the restored rate at once."""
        if state["schedule"] != type(self).__name__:
            raise ValueError(f"{type(self).__name__}.setState: the state is of a {state['schedule']}")
        self.restoreState(state)
        if self.optimizer is not None:
            self.apply()

    def restoreState(self, state):
        """Take the values of getState's state (subclasses extend it, setState applies the rate)."""
        self.steps, self.baseRate = int(state["steps"]), state["baseRate"]
