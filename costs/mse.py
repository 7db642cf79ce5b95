"""MSE: mean squared error."""
import numpy

from ..engine.backend import xp
from ..engine.dtype import checkFloat, defaultDtype
from .cost import Cost


class MSE(Cost):
    """pred and target of the same shape (batch, ...).

    error = mean over all elements of (pred - target)^2 (torch's MSELoss); grad = 2 (pred - target) / size.
    dtype: what prepareTarget converts targets to (the engine default, float32); use the model's dtype.
    """

    samplewise = True

    def __init__(self, dtype=None):
        super().__init__()
        self.dtype = numpy.dtype(defaultDtype if dtype is None else dtype)
        checkFloat(self.dtype, "MSE")
        self.diff = None

    def prepareTarget(self, target):
        """Targets as self.dtype, on the host or the device as given."""
        return self.floatTarget(target, self.dtype)

    def calcError(self, pred, target):
        # the difference becomes the gradient in place; vdot sums its squares without a temporary
        self.diff = xp.subtract(pred, target)
        return xp.asarray(xp.vdot(self.diff, self.diff) / pred.size)

    def calcGrad(self, pred, target):
        grad, self.diff = self.diff, None
        grad *= 2.0 / pred.size
        return grad
