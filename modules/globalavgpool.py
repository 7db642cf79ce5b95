"""GlobalAvgPool: the mean of each map over all its spatial axes."""
import math

from ..engine.backend import xp
from ..engine.gemm import matmul
from ..engine.errors import ShapeError
from .module import Module


class GlobalAvgPool(Module):
    """Global average pooling of (batch, maps, L), (batch, maps, H, W) or (batch, maps, D, H, W) inputs
    to (batch, maps): the mean of each map, ready for a Linear layer without a Flatten (PyTorch's
    adaptive_avg_pool to size 1, flattened). The forward pass is one matrix-vector product over the
    (batch*maps, spatial) view, on either backend; backward spreads grad / spatial size over each map.
    """

    layouts = "(batch, maps, length), (batch, maps, height, width) or (batch, maps, depth, height, width)"

    def __init__(self, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())

    def checkDataShape(self, shape):
        if len(shape) not in (3, 4, 5):
            raise ShapeError(f"{self.describe()}: expected input of shape {self.layouts}, got {tuple(shape)}")

    @staticmethod
    def spatialMean(data):
        """The (batch, maps) means of data (batch, maps, ...) over its spatial axes."""
        n, c = data.shape[:2]
        count = math.prod(data.shape[2:])
        weights = xp.full(count, 1.0 / count, dtype=data.dtype)
        return matmul(data.reshape(n * c, count), weights).reshape(n, c)

    @staticmethod
    def spreadMean(grad, shape):
        """The input gradient of spatialMean: grad (batch, maps) / spatial size, over every element of shape."""
        out = xp.empty(shape, dtype=grad.dtype)
        xp.copyto(out, (grad * (1.0 / math.prod(shape[2:]))).reshape(shape[:2] + (1,) * (len(shape) - 2)))
        return out

    def updateData(self, data):
        return self.spatialMean(data)

    def updateGrad(self, grad):
        return self.spreadMean(grad, self.inData.shape)
