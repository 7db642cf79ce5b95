"""Reshape: gives each sample of a batch a new shape."""
import math

from ..engine.errors import ShapeError
from .module import Module


class Reshape(Module):
    """(N, ...) -> (N,) + shape. shape excludes the batch axis and may hold one -1, inferred from
    the sample size. A view of a contiguous input; any float dtype."""

    def __init__(self, shape, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.shape = tuple(int(d) for d in shape)
        if self.shape.count(-1) > 1 or any(d < -1 or d == 0 for d in self.shape):
            raise ValueError(f"{self.describe()}: shape must hold positive sizes and at most one -1, "
                             f"got {self.shape}")

    def outShape(self, shape):
        """The output shape for an input shape; ShapeError naming both when the sample size does not fit."""
        sampleSize = math.prod(shape[1:])
        known = math.prod(d for d in self.shape if d != -1)
        fits = sampleSize % known == 0 if -1 in self.shape else sampleSize == known
        if len(shape) < 1 or not fits:
            raise ShapeError(f"{self.describe()}: cannot reshape input of shape {tuple(shape)} "
                             f"to (batch,) + {self.shape}")
        return (shape[0],) + tuple(sampleSize // known if d == -1 else d for d in self.shape)

    def checkDataShape(self, shape):
        self.outShape(shape)

    def updateData(self, data):
        return data.reshape(self.outShape(data.shape))

    def updateGrad(self, grad):
        return grad.reshape(self.inData.shape)
