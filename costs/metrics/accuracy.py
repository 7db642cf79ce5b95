"""Accuracy: the fraction of samples whose largest logit is at the label."""
from ...engine.backend import xp
from .metric import Metric


class Accuracy(Metric):
    """pred: logits (batch, classes); target: integer labels (batch,). Reports ``accuracy`` (argmax ==
    label, ties to the first class, as CrossEntropy's accuracy)."""

    def __init__(self):
        super().__init__(correct=xp.zeros((), dtype=xp.int64))

    def checkShapes(self, pred, target):
        return self.checkLabels(pred, target)

    def accumulate(self, pred, target):
        self.accums["correct"] += (pred.argmax(axis=1) == target).sum()
        return pred.shape[0]

    def results(self, accums, count):
        return {"accuracy": self.mean(accums["correct"], count)}
