"""L1: mean absolute error."""
import numpy

from ..engine.backend import xp
from ..engine.dtype import checkFloat, defaultDtype
from .cost import Cost


class L1(Cost):
    """pred and target of the same shape (batch, ...).

    error = mean over all elements of |pred - target| (torch's l1_loss); grad = sign(pred - target) / size
    (0 where they are equal, as torch). dtype: what prepareTarget converts targets to (the engine
    default, float32); use the model's dtype.
    """

    samplewise = True

    def __init__(self, dtype=None):
        super().__init__()
        self.dtype = numpy.dtype(defaultDtype if dtype is None else dtype)
        checkFloat(self.dtype, type(self).__name__)
        self.slope = None

    def prepareTarget(self, target):
        """Targets as self.dtype, on the host or the device as given."""
        return self.floatTarget(target, self.dtype)

    def calcError(self, pred, target):
        # the slope d|d|/dd becomes the gradient in place; vdot(slope, diff) sums |diff|
        diff = xp.subtract(pred, target)
        self.slope = xp.sign(diff)
        return xp.asarray(xp.vdot(self.slope, diff) / pred.size)

    def calcGrad(self, pred, target):
        grad, self.slope = self.slope, None
        grad /= pred.size
        return grad
