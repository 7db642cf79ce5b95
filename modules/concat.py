"""Concat: several arrays joined along one axis."""
import itertools

from ..engine.backend import xp
from ..engine.errors import ShapeError
from .multimodule import MultiModule


class Concat(MultiModule):
    """Joins a list of arrays along axis (as torch.cat / numpy.concatenate): every other axis must agree.

    axis counts from 0 (the batch axis) and may be negative; axis=1 joins the maps of NCHW images or the
    features of (batch, features) vectors. The input gradients are views of the output gradient's parts,
    so backward copies nothing."""

    def __init__(self, axis=1, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.axis = axis
        self.bounds = None  # where each input ends along the axis, for splitting the gradient

    def checkDataShape(self, shapes):
        axis = self.checkAxis(self.axis, self.checkInputList(shapes))
        rest = {s[:axis] + s[axis + 1:] for s in shapes}
        if len(rest) > 1:
            raise ShapeError(f"{self.describe()}: inputs must agree on every axis but {axis}, got shapes {shapes}")

    def updateData(self, data):
        self.bounds = list(itertools.accumulate(ary.shape[self.axis] for ary in data))[:-1]
        return xp.concatenate(data, axis=self.axis)

    def updateGrad(self, grad):
        return xp.split(grad, self.bounds, axis=self.axis)
