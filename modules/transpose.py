"""Transpose: permutes the axes of each sample."""
import numbers

from ..engine.backend import xp
from ..engine.errors import ShapeError
from .module import Module


class Transpose(Module):
    """Permutes the axes of the input as numpy.transpose(data, axes), e.g. axes=(0, 2, 3, 1) turns
    (batch, maps, height, width) into (batch, height, width, maps).

    axes names every axis, the batch axis included, so that it reads like NumPy and PyTorch's permute,
    but must leave the batch axis first (axes[0] == 0): handlers split and shuffle along axis 0.
    The output is a contiguous copy, so the layers after it run on contiguous memory; backward
    permutes the gradient back with the inverse permutation.
    """

    def __init__(self, axes, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.axes = tuple(axes)
        if (not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in self.axes)
                or sorted(self.axes) != list(range(len(self.axes))) or len(self.axes) < 2 or self.axes[0] != 0):
            raise ValueError(f"{self.describe()}: axes must be a permutation of 0..n-1 (n >= 2) that keeps "
                             f"the batch axis 0 first, got {self.axes}")
        self.axes = tuple(int(a) for a in self.axes)
        self.inverse = tuple(sorted(range(len(self.axes)), key=self.axes.__getitem__))

    def checkDataShape(self, shape):
        if len(shape) != len(self.axes):
            raise ShapeError(f"{self.describe()}: axes {self.axes} need an input with {len(self.axes)} axes, "
                             f"got shape {tuple(shape)}")

    def updateData(self, data):
        return xp.ascontiguousarray(data.transpose(self.axes))

    def updateGrad(self, grad):
        return xp.ascontiguousarray(grad.transpose(self.inverse))
