"""TopKAccuracy: the fraction of samples whose label is among the k largest logits."""
from ...engine.backend import xp
from ...engine.errors import ShapeError
from ...engine.checks import checkPositiveInt
from .metric import Metric


class TopKAccuracy(Metric):
    """pred: logits (batch, classes); target: integer labels (batch,); k: a positive int, at most the
    number of classes. A sample counts when fewer than k classes have a strictly larger logit than its
    label's (ties count in the label's favour), found by one comparison pass, without sorting.
    Reports ``top{k}Accuracy``."""

    def __init__(self, k=5):
        self.k = checkPositiveInt(k, "TopKAccuracy: k")
        super().__init__(correct=xp.zeros((), dtype=xp.int64))

    def checkShapes(self, pred, target):
        return self.checkLabels(pred, target)

    def checkClasses(self, classes):
        if self.k > classes:
            raise ShapeError(f"TopKAccuracy: k={self.k} is more than the {classes} classes of the predictions")

    def accumulate(self, pred, target):
        labelLogits = xp.take_along_axis(pred, target[:, None], axis=1)
        above = (pred > labelLogits).sum(axis=1)
        self.accums["correct"] += (above < self.k).sum()
        return pred.shape[0]

    def results(self, accums, count):
        return {f"top{self.k}Accuracy": self.mean(accums["correct"], count)}
