"""SoftMax: normalised exponentials over the maps axis."""
from ..engine.backend import xp
from .module import Module


class SoftMax(Module):
    """softmax over axis 1: class scores (N, C) or per-pixel scores (N, C, H, W).

    The row maximum is subtracted first, so large scores do not overflow exp. Any float dtype.
    """

    def __init__(self, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())

    def checkDataShape(self, shape):
        if len(shape) < 2:
            self.checkRank(shape, 2, "(batch, classes, ...)")

    def updateData(self, data):
        out = data - data.max(axis=1, keepdims=True)
        xp.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def updateGrad(self, grad):
        # dx = y * (g - sum(g * y)) over axis 1
        y = self.data
        dx = grad * y
        dot = dx.sum(axis=1, keepdims=True)
        xp.subtract(grad, dot, out=dx)
        dx *= y
        return dx
