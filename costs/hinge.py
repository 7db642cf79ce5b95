"""Hinge: the multi-class margin loss of scores against integer class labels, with accuracy."""
import math

from ..engine.backend import xp
from .crossentropy import CrossEntropy


class Hinge(CrossEntropy):
    """pred: scores (batch, classes) or (batch, time, classes); target: class labels as for
    CrossEntropy, whose label handling (prepareTarget, range checks, sequences, accuracy) it shares;
    only the loss differs.

    error = the mean over rows of sum over i != label of max(0, margin - x[label] + x[i]) / classes
    (torch.nn.MultiMarginLoss with p=1 and no weights); grad: 1 / (classes rows) for every i whose
    term is positive, minus their count at the label.

    margin: finite, >= 0 (torch's default 1).
    """

    def __init__(self, margin=1.0):
        super().__init__()
        margin = float(margin)
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"Hinge: margin must be finite and >= 0, got {margin}")
        self.margin = margin
        self.terms = None

    def rowLosses(self, scores, labels):
        rows, classes = scores.shape
        self.flatLabels = xp.arange(rows) * classes + labels
        picked = scores.reshape(-1)[self.flatLabels]
        self.terms = xp.subtract(scores, picked[:, None])
        self.terms += self.margin
        self.terms.reshape(-1)[self.flatLabels] = 0
        xp.maximum(self.terms, 0, out=self.terms)
        return self.terms.sum(axis=1) / classes

    def rowGrad(self, scores, labels, scale):
        terms, self.terms = self.terms, None
        grad = (terms > 0).astype(scores.dtype)
        grad *= scale / scores.shape[1]
        grad.reshape(-1)[self.flatLabels] = -grad.sum(axis=1)
        return grad
