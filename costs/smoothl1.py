"""SmoothL1: squared error near zero, absolute error beyond beta (torch's smooth_l1_loss)."""
from ..engine.backend import xp
from .l1 import L1


class SmoothL1(L1):
    """pred and target of the same shape (batch, ...); d = pred - target.

    error = mean over all elements of 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere
    (torch's smooth_l1_loss); grad = clip(d / beta, -1, 1) / size. With c = clip(d, -beta, beta)
    both pieces are c (d - c / 2) / beta, so the error is two dot products and c / beta is the
    gradient. beta: >= 0; 0 is L1 (as torch). dtype: as in L1.
    """

    def __init__(self, beta=1.0, dtype=None):
        super().__init__(dtype)
        beta = float(beta)
        if not beta >= 0 or beta == float("inf"):
            raise ValueError(f"SmoothL1: beta must be finite and >= 0, got {beta}")
        self.beta = beta

    def calcError(self, pred, target):
        if self.beta == 0.0:
            return super().calcError(pred, target)
        diff = xp.subtract(pred, target)
        self.slope = xp.clip(diff, -self.beta, self.beta)
        error = (xp.vdot(self.slope, diff) - 0.5 * xp.vdot(self.slope, self.slope)) / (self.beta * pred.size)
        self.slope /= self.beta
        return xp.asarray(error)
