"""BCE: binary cross-entropy of logits against target probabilities, with accuracy."""
import numpy

from ..engine.backend import isCuda, xp
from ..engine.dtype import checkFloat, defaultDtype
from ..engine.kernels import ElementwiseKernel, ReductionKernel
from .cost import Cost


class BCE(Cost):
    """pred: logits of any shape (batch, ...); target: probabilities in [0, 1] of the same shape.

    error = mean over all elements of max(x, 0) - x t + log1p(exp(-|x|)), the form of
    torch's binary_cross_entropy_with_logits that neither overflows nor loses small losses;
    grad = (sigmoid(x) - t) / (number of elements).
    getMetrics also reports accuracy: the fraction of elements where (x > 0) == (t > 0.5).
    dtype: what prepareTarget converts targets to (the engine default, float32); use the model's dtype.
    """

    samplewise = True

    lossKernel = ReductionKernel("T x, T t", "T loss", "fmax(x, (T)0) - x * t + log1p(exp(-fabs(x)))", "a + b",
                                 "loss = a", "0", "macrobatch_bce_loss")
    gradKernel = ElementwiseKernel("T x, T t, T invSize", "T grad", "grad = (1 / (1 + exp(-x)) - t) * invSize",
                                   "macrobatch_bce_grad")

    def __init__(self, dtype=None):
        super().__init__()
        self.dtype = numpy.dtype(defaultDtype if dtype is None else dtype)
        checkFloat(self.dtype, "BCE")
        self.expNegAbs = None

    def prepareTarget(self, target):
        """Targets as self.dtype, on the host or the device as given; values outside [0, 1] (or NaN)
        raise LabelError naming the first one and its index."""
        target = self.floatTarget(target, self.dtype)
        self.rejectTargets(target, ~((target >= 0) & (target <= 1)),
                           "target {value} at index {index} is outside [0, 1]")
        return target

    def calcError(self, pred, target):
        if isCuda:
            return self.lossKernel(pred, target) / pred.size
        # exp(-|x|) lies in (0, 1]: it never overflows, and calcGrad builds the sigmoid from it
        self.expNegAbs = xp.abs(pred)
        xp.negative(self.expNegAbs, out=self.expNegAbs)
        xp.exp(self.expNegAbs, out=self.expNegAbs)
        loss = xp.log1p(self.expNegAbs)
        part = xp.maximum(pred, 0)
        loss += part
        xp.multiply(pred, target, out=part)
        loss -= part
        return xp.asarray(loss.mean())

    def calcGrad(self, pred, target):
        if isCuda:
            return self.gradKernel(pred, target, pred.dtype.type(1.0 / pred.size))
        expNegAbs, self.expNegAbs = self.expNegAbs, None
        grad = xp.add(expNegAbs, 1)
        xp.reciprocal(grad, out=grad)
        # sigmoid(x) = exp(-|x|) sigmoid(|x|) for x < 0, exact where 1 - sigmoid(|x|) would round to 0
        xp.multiply(grad, expNegAbs, out=grad, where=pred < 0)
        grad -= target
        grad /= pred.size
        return grad

    def countCorrect(self, pred, target):
        return ((pred > 0) == (target > 0.5)).sum(), pred.size
