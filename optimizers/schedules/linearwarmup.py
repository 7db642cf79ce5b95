"""LinearWarmup: a linear ramp up to the base rate, then another schedule."""
from .schedule import Schedule


class LinearWarmup(Schedule):
    """rate(t) = baseRate * (startFactor + (1 - startFactor) * t / warmupSteps) for t < warmupSteps,
    then the schedule ``after`` (baseRate when there is none), as torch.optim.lr_scheduler.LinearLR
    followed by the next scheduler of a SequentialLR with milestones=[warmupSteps].

    Large early steps from freshly initialised weights (and fresh Adam moments) can wreck a run;
    ramping up over the first steps avoids it.

    after: a Schedule built on the same optimizer or on None (this one attaches it); it takes over
    once the warmup is over, its own counter starting at 0 on the first step after the warmup, and
    from then on every stepBatch/stepEpoch goes to it, so it may count another unit (a per-batch
    warmup, then a per-epoch StepDecay or a ReduceOnPlateau, which sees no metrics during the
    warmup). ``rateAt(t)`` past the warmup is ``after.rateAt(t - warmupSteps)``, meaningful when both
    count the same unit.
    """

    def __init__(self, optimizer, warmupSteps, after=None, per="batch", startFactor=0.0):
        self.warmupSteps = self.checkInt("warmupSteps", warmupSteps, 1)
        # startFactor 1 would be no warmup: leave the warmup out instead.
        self.startFactor = self.checkHyper("startFactor", startFactor, high=1.0)
        if after is not None and not isinstance(after, Schedule):
            raise TypeError(f"LinearWarmup: after must be a Schedule, got {type(after).__name__}")
        self.after = after
        super().__init__(optimizer, per)

    def attach(self, optimizer):
        """Attach after as well; both ramp to and start from the same baseRate (after's when it was
        attached first, which it is when built on the optimizer inside this constructor's call)."""
        if self.after is not None:
            if self.after.optimizer is None:
                self.after.attach(optimizer)
            elif self.after.optimizer is not optimizer:
                raise ValueError("LinearWarmup: after drives another optimizer")
            if self.baseRate is None:
                self.baseRate = self.after.baseRate
        return super().attach(optimizer)

    @property
    def handedOver(self):
        return self.after is not None and self.steps >= self.warmupSteps

    def rateAt(self, step):
        if step < self.warmupSteps:
            return self.baseRate * (self.startFactor + (1.0 - self.startFactor) * step / self.warmupSteps)
        return self.baseRate if self.after is None else self.after.rateAt(step - self.warmupSteps)

    def apply(self):
        if self.handedOver:
            self.after.apply()
        else:
            super().apply()

    def stepBatch(self):
        if self.handedOver:
            self.after.stepBatch()
        else:
            super().stepBatch()

    def stepEpoch(self, metrics=None):
        if self.handedOver:
            self.after.stepEpoch(metrics)
        else:
            super().stepEpoch(metrics)

    def getState(self):
        state = super().getState()
        if self.after is not None:
            state["after"] = self.after.getState()
        return state

    def restoreState(self, state):
        super().restoreState(state)
        if self.after is not None:
            self.after.setState(state["after"])
