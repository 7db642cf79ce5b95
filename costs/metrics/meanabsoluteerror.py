"""MeanAbsoluteError: the mean over all elements of |pred - target|."""
from ...engine.backend import xp
from .metric import Metric


class MeanAbsoluteError(Metric):
    """pred and target of the same shape (batch, ...). Reports ``mae``, the mean over every element
    seen; the sum is kept in float64 across batches."""

    def __init__(self):
        super().__init__(total=xp.zeros((), dtype=xp.float64))

    def checkShapes(self, pred, target):
        return self.checkLike(pred, target)

    def accumulate(self, pred, target):
        diff = xp.subtract(pred, target)
        xp.abs(diff, out=diff)
        self.accums["total"] += diff.sum()
        return pred.size

    def results(self, accums, count):
        return {"mae": self.mean(accums["total"], count)}
