"""Cost: the error of a batch, its gradient, and the error accumulated over batches.

Sign convention: the gradient a cost returns is d loss / d pred, the loss's own gradient (not
its negative); optimizers subtract it. The batch loss is the mean over the batch's samples,
so the gradient carries the 1/batch factor and learning rates do not depend on batch size.

The accumulated error stays on the device; ``getError`` is the one place that asks the host
for a number, so a training loop that does not print never synchronises.
"""
from ..engine.backend import toHost, xp
from ..engine.errors import ShapeError


class Cost:
    """Subclasses implement ``calcError(pred, target)`` (returns the batch's mean loss as a 0-d
    device array, keeping what the gradient needs) and ``calcGrad(pred, target)`` (called right
    after calcError on the same batch), and ``prepareTarget`` for the targets they accept."""

    def __init__(self):
        self.accumErr = xp.zeros((), dtype=xp.float64)
        self.accumCount = 0

    def __call__(self, pred, target):
        """Returns (error, grad) for a training batch and adds the error to the accumulator."""
        error = self.validate(pred, target)
        return error, self.calcGrad(pred, target)

    def validate(self, pred, target):
        """Returns the batch's mean error (a 0-d device array) and accumulates it; no gradient."""
        self.checkShapes(pred, target)
        error = self.calcError(pred, target)
        self.accumErr += error * pred.shape[0]
        self.accumCount += pred.shape[0]
        self.accumulateMetrics(pred, target)
        return error

    def checkShapes(self, pred, target):
        if target.shape != pred.shape:
            raise ShapeError(f"{type(self).__name__}: target of shape {target.shape} does not match "
                             f"prediction of shape {pred.shape}")

    def prepareTarget(self, target):
        """Validate a block of targets (host or device array) and return it in the dtype the cost
        computes with. Called once per macrobatch, or once per call on device-resident data."""
        return target

    def calcError(self, pred, target):
        raise NotImplementedError

    def calcGrad(self, pred, target):
        raise NotImplementedError

    def accumulateMetrics(self, pred, target):
        """Add per-batch metric counts (on the device); override with getMetrics and resetAccumulator."""

    def getError(self):
        """Mean error over the samples seen since the last reset (a host float; synchronises)."""
        return float(toHost(self.accumErr)) / self.accumCount if self.accumCount else float("nan")

    def getMetrics(self):
        """Host dict of everything the cost tracks; subclasses add their metrics."""
        return {"error": self.getError()}

    def resetAccumulator(self):
        self.accumErr.fill(0)
        self.accumCount = 0
