"""ConfusionMatrix: counts of (label, predicted class) pairs, with per-class precision, recall and F1."""
import math

import numpy

from ...engine.backend import xp
from ...engine.errors import ShapeError
from ...engine.checks import checkPositiveInt
from .metric import Metric


def ratio(numerator, denominator):
    """numerator / denominator elementwise, NaN where the denominator is 0."""
    return numpy.divide(numerator, denominator, out=numpy.full(numerator.shape, math.nan),
                        where=denominator > 0)


class ConfusionMatrix(Metric):
    """pred: logits (batch, classes); target: integer labels (batch,); classes: their number.

    Each batch adds one count per sample at (label, argmax) of a flat (classes * classes) device array,
    with a scatter-add (``add.at``, atomic on the GPU) of the cell indices label * classes + argmax
    (labels checked as Metric.checkLabels says, so every index is in range).

    Reports ``confusion`` (int64 (classes, classes): rows are labels, columns predictions), per-class
    ``precision`` = tp / predicted, ``recall`` = tp / actual and ``f1`` = 2 tp / (predicted + actual),
    NaN where the denominator is 0, and ``macroPrecision``, ``macroRecall``, ``macroF1``: their means
    over the classes that occur among the labels or the predictions, counting an undefined value
    there as 0 (scikit-learn's macro average with zero_division=0).
    """

    def __init__(self, classes):
        self.classes = checkPositiveInt(classes, "ConfusionMatrix: classes")
        super().__init__(counts=xp.zeros(self.classes * self.classes, dtype=xp.uint64))

    def checkShapes(self, pred, target):
        return self.checkLabels(pred, target)

    def checkClasses(self, classes):
        if classes != self.classes:
            raise ShapeError(f"ConfusionMatrix: predictions have {classes} classes, expected {self.classes}")

    def accumulate(self, pred, target):
        cells = target.astype(xp.int64) * self.classes + pred.argmax(axis=1)
        xp.add.at(self.accums["counts"], cells, xp.ones(cells.shape, dtype=xp.uint64))
        return pred.shape[0]

    def results(self, accums, count):
        confusion = accums["counts"].astype(numpy.int64).reshape(self.classes, self.classes)
        truePos, predicted, actual = numpy.diag(confusion), confusion.sum(axis=0), confusion.sum(axis=1)
        scores = {"precision": ratio(truePos, predicted), "recall": ratio(truePos, actual),
                  "f1": ratio(2 * truePos, predicted + actual)}
        occurring = (predicted + actual) > 0
        macro = {"macro" + name.capitalize(): float(numpy.nan_to_num(values[occurring]).mean())
                 if occurring.any() else math.nan for name, values in scores.items()}
        return {"confusion": confusion, **scores, **macro}
