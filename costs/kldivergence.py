"""KLDivergence: Kullback-Leibler divergence of predicted log-probabilities from target probabilities."""
import numpy

from ..engine.backend import isCuda, xp
from ..engine.dtype import checkFloat, defaultDtype
from ..engine.kernels import ReductionKernel
from .bce import BCE
from .cost import Cost


class KLDivergence(Cost):
    """pred: log-probabilities (batch, ...) (a log-softmax output); target: probabilities in [0, 1]
    of the same shape. The convention of torch's kl_div(input, target, reduction="batchmean"):

    error = sum over all elements of t (log t - pred), divided by the batch size (not the element
    count), a term being 0 where t = 0; grad = -t / batch.
    dtype: what prepareTarget converts targets to (the engine default, float32); use the model's dtype.
    """

    samplewise = True

    lossKernel = ReductionKernel("T x, T t", "T loss", "t > 0 ? t * (log(t) - x) : -t * x", "a + b",
                                 "loss = a", "0", "macrobatch_kl_loss")

    def __init__(self, dtype=None):
        super().__init__()
        self.dtype = numpy.dtype(defaultDtype if dtype is None else dtype)
        checkFloat(self.dtype, "KLDivergence")

    # targets are probabilities, validated as BCE validates them
    prepareTarget = BCE.prepareTarget

    def calcError(self, pred, target):
        batch = pred.shape[0]
        if isCuda:
            return self.lossKernel(pred, target) / batch
        # t log t, with 0 where t is 0 (torch's xlogy): log is taken only where t > 0
        entropy = numpy.log(target, out=numpy.zeros_like(target), where=target > 0)
        return xp.asarray((xp.vdot(target, entropy) - xp.vdot(target, pred)) / batch)

    def calcGrad(self, pred, target):
        return xp.multiply(target, -1.0 / pred.shape[0], dtype=pred.dtype)
