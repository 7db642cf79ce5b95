"""SoftMax: normalised exponentials over the maps axis."""
from ..engine.backend import xp
from ..engine.dtype import statDtype
from .module import Module


class SoftMax(Module):
    """softmax over axis 1: class scores (N, C) or per-pixel scores (N, C, H, W).

    The row maximum is subtracted first, so large scores do not overflow exp. Any float dtype.
    Precision: float16 data is computed in float32 (engine.dtype.statDtype), forward and backward (its sums
    over the classes would lose float16's 11-bit mantissa), and the results rounded to float16 once.
    """

    def __init__(self, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())

    def checkDataShape(self, shape):
        if len(shape) < 2:
            self.checkRank(shape, 2, "(batch, classes, ...)")

    def updateData(self, data):
        x = data.astype(statDtype(data.dtype), copy=False)
        out = x - x.max(axis=1, keepdims=True)
        xp.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out.astype(data.dtype, copy=False)

    def updateGrad(self, grad):
        # dx = y * (g - sum(g * y)) over axis 1
        dtype = statDtype(grad.dtype)
        y, g = self.data.astype(dtype, copy=False), grad.astype(dtype, copy=False)
        dx = g * y
        dot = dx.sum(axis=1, keepdims=True)
        xp.subtract(g, dot, out=dx)
        dx *= y
        return dx.astype(grad.dtype, copy=False)
