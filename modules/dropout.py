"""Dropout: inverted dropout, the identity in eval mode."""
import numpy

from ..engine import random
from ..engine.backend import isCuda, xp
from ..engine.kernels import ElementwiseKernel
from .module import Module


class Dropout(Module):
    """Zeroes each input with probability p in train mode and scales the kept ones by 1 / (1 - p),
    so eval mode (where it is the identity) sees the same expected activations.

    The mask is drawn with engine.random.uniform, so setSeed makes it reproducible; backward
    applies the same mask. Any input shape and float dtype. Subclasses that drop whole groups of
    inputs (Dropout2D: whole maps) override maskShape; the mask broadcasts over the input.
    A dropped input is multiplied by 0, not replaced, so a NaN or inf stays non-finite, as in torch.
    """

    maskKernel = ElementwiseKernel("T x, bool keep, T scale", "T y", "y = x * (keep ? scale : (T)0)",
                                   "macrobatch_dropout_mask")

    def __init__(self, p=0.5, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        if not 0 <= p < 1:
            raise ValueError(f"{self.describe()}: dropout probability p must be in [0, 1), got {p}")
        self.p = p
        self.keep = None

    def maskShape(self, shape):
        """The shape of the keep mask for an input of this shape: one draw per element."""
        return shape

    def applyMask(self, ary):
        """ary * keep / (1 - p), for the forward data and the backward gradient alike (keep broadcasts)."""
        scale = ary.dtype.type(1 / (1 - self.p))
        if isCuda:
            return self.maskKernel(ary, self.keep, scale)
        out = xp.multiply(ary, self.keep)
        out *= scale
        return out

    def updateData(self, data):
        if not self.train or self.p == 0:
            self.keep = None
            return data
        self.keep = random.uniform(self.maskShape(data.shape), numpy.float32) >= self.p
        return self.applyMask(data)

    def updateGrad(self, grad):
        return grad if self.keep is None else self.applyMask(grad)
