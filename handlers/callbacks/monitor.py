"""Monitor: which figure of the epoch logs a callback watches, and what counts as better."""


class Monitor:
    """monitor: a key of the epoch logs (e.g. 'val_loss'); mode: 'min' or 'max'; minDelta: how much better
    a value must be to count as an improvement."""

    def __init__(self, monitor, mode="min", minDelta=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode, self.minDelta = monitor, mode, minDelta
        self.best = None

    def value(self, logs):
        if self.monitor not in logs:
            raise KeyError(f"monitored figure {self.monitor!r} is not in the epoch logs {sorted(logs)}; "
                           "pass validation data for val_* figures")
        return logs[self.monitor]

    def improved(self, logs):
        """Whether this epoch's value beats the best so far (and if so, record it)."""
        value = self.value(logs)
        better = self.best is None or (value < self.best - self.minDelta if self.mode == "min"
                                       else value > self.best + self.minDelta)
        if better:
            self.best = value
        return better
