"""MeanSquaredError: the mean over all elements of (pred - target)^2."""
from ...engine.backend import xp
from .metric import Metric


class MeanSquaredError(Metric):
    """pred and target of the same shape (batch, ...). Reports ``mse``, the mean over every element
    seen (as the MSE cost's error); the sum is kept in float64 across batches."""

    def __init__(self):
        super().__init__(total=xp.zeros((), dtype=xp.float64))

    def checkShapes(self, pred, target):
        return self.checkLike(pred, target)

    def accumulate(self, pred, target):
        diff = xp.subtract(pred, target)
        self.accums["total"] += xp.vdot(diff, diff)
        return pred.size

    def results(self, accums, count):
        return {"mse": self.mean(accums["total"], count)}
