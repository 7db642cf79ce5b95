"""Pool2D: the window geometry and input check shared by the 2D pooling modules."""
from ..engine.im2col import checkImageShape, poolGeometry
from .module import Module


class Pool2D(Module):
    """Base of MaxPool2D and AvgPool2D: size, stride and pad take an int or an (h, w) pair; stride
    defaults to size (windows side by side); pad is at most half the window, so no window is all
    padding. Inputs are (batch, maps, H, W)."""

    def __init__(self, size=2, stride=None, pad=0, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.size, self.stride, self.pad = poolGeometry(size, stride, pad)
        self.overlap = any(s < k for s, k in zip(self.stride, self.size))

    def checkDataShape(self, shape):
        checkImageShape(shape, self.size, self.pad, self.describe())
