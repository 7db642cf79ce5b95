"""ReduceOnPlateau: cut the learning rate when a monitored metric stops improving."""
import math

from .schedule import Schedule

# As torch: a cut smaller than this (the rate already at minRate, up to rounding) is not made.
MIN_CUT = 1e-8


class ReduceOnPlateau(Schedule):
    """rate *= factor (never below minRate) once ``metrics[monitor]`` has not improved for more than
    patience epochs, as torch.optim.lr_scheduler.ReduceLROnPlateau with threshold_mode="rel".

    For when no step count can be fixed in advance: the run itself says when a rate has stopped
    paying off. Only ``stepEpoch(metrics)`` does anything; the rate is not a function of the step
    but of the metrics seen, so ``rateAt`` returns the current rate whatever the step.

    An epoch improves on the best value so far when value < best * (1 - threshold) (mode "min") or
    value > best * (1 + threshold) (mode "max"). After a cut, cooldown epochs pass before bad
    epochs count again.
    """

    def __init__(self, optimizer, monitor="val_loss", factor=0.1, patience=10, mode="min", threshold=1e-4,
                 cooldown=0, minRate=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceOnPlateau: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.factor = self.checkHyper("factor", factor, high=1.0, lowOpen=True)
        self.patience = self.checkInt("patience", patience, 0)
        self.threshold = self.checkHyper("threshold", threshold)
        self.cooldown = self.checkInt("cooldown", cooldown, 0)
        self.minRate = self.checkHyper("minRate", minRate)
        self.rate = None
        self.best = math.inf if mode == "min" else -math.inf
        self.badEpochs = self.cooldownLeft = 0
        super().__init__(optimizer, per="epoch")

    def rateAt(self, step):
        return self.baseRate if self.rate is None else self.rate

    def improves(self, value):
        if self.mode == "min":
            return value < self.best * (1.0 - self.threshold)
        return value > self.best * (1.0 + self.threshold)

    def stepEpoch(self, metrics=None):
        """Judge the epoch by metrics[monitor] and cut the rate after more than patience bad epochs."""
        if metrics is None or self.monitor not in metrics:
            raise KeyError(f"ReduceOnPlateau monitors {self.monitor!r}, but the epoch's metrics hold "
                           f"{sorted(metrics) if metrics else 'nothing'}")
        value = float(metrics[self.monitor])
        self.steps += 1
        if self.improves(value):
            self.best, self.badEpochs = value, 0
        else:
            self.badEpochs += 1
        if self.cooldownLeft > 0:
            self.cooldownLeft -= 1
            self.badEpochs = 0
        if self.badEpochs > self.patience:
            rate = self.rateAt(self.steps)
            cut = max(rate * self.factor, self.minRate)
            if rate - cut > MIN_CUT:
                self.rate = cut
            self.cooldownLeft, self.badEpochs = self.cooldown, 0
        self.apply()

    def getState(self):
        return {**super().getState(), "rate": self.rateAt(self.steps), "best": self.best, "badEpochs": self.badEpochs,
                "cooldownLeft": self.cooldownLeft}

    def restoreState(self, state):
        super().restoreState(state)
        self.rate, self.best = state["rate"], float(state["best"])
        self.badEpochs, self.cooldownLeft = int(state["badEpochs"]), int(state["cooldownLeft"])
