"""Flatten: (batch, ...) -> (batch, features)."""
from .module import Module


class Flatten(Module):
    """Joins every axis but the batch axis: (N, d1, d2, ...) -> (N, d1 * d2 * ...), e.g. between the
    convolutions and the first Linear. A view of a contiguous input; any float dtype."""

    def __init__(self, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())

    def checkDataShape(self, shape):
        if len(shape) < 2:
            self.checkRank(shape, 2, "(batch, ...) with at least one axis after the batch")

    def updateData(self, data):
        return data.reshape(data.shape[0], -1)

    def updateGrad(self, grad):
        return grad.reshape(self.inData.shape)
