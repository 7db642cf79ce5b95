"""WeightDecay: L2 regularisation as a gradient hook, g += rate * p."""
from ..engine.backend import isCuda, xp
from ..engine.checks import checkHyper
from ..engine.kernels import ElementwiseKernel


class WeightDecay:
    """A gradient hook (``optimizer.addHook(WeightDecay(1e-4))``) that adds rate * param to every
    gradient before the step: the L2 penalty rate/2 ||p||^2, torch.optim.SGD's (and Adam's)
    ``weight_decay``. Added before a clipping hook, the decay is clipped with the gradient, as in
    torch; after it, it is not. Frozen parameters (learnRate multiplier 0) get it too, harmlessly.

    rate: >= 0. The NumPy path works in chunks of ``chunk`` elements through one small buffer, so
    it allocates nothing per step and stays in cache.
    """

    usesParams = True
    chunk = 1 << 14
    checkHyper = checkHyper
    kernel = ElementwiseKernel("T param, T rate", "T grad", "grad += rate * param;", "macrobatch_weight_decay")

    def __init__(self, rate):
        self.rate = self.checkHyper("rate", rate)
        self.buffers = {}

    def __call__(self, grads, params):
        if self.rate == 0.0:
            return
        for grad, param in zip(grads, params):
            if isCuda:
                self.kernel(param, param.dtype.type(self.rate), grad)
                continue
            grad, param = grad.reshape(-1), param.reshape(-1)
            buf = self.buffers.setdefault(param.dtype, xp.empty(self.chunk, dtype=param.dtype))
            for start in range(0, param.size, self.chunk):
                part = buf[:min(self.chunk, param.size - start)]
                xp.multiply(param[start:start + self.chunk], self.rate, out=part)
                grad[start:start + self.chunk] += part
