"""NesterovSGD: gradient descent with Nesterov momentum."""
from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .optimizer import Optimizer


class NesterovSGD(Optimizer):
    """v = momRate * v + g;  p -= learnRate * (g + momRate * v) (torch.optim.SGD with
    nesterov=True, dampening 0: the step looks ahead along the updated velocity).

    momRate: in [0, 1).
    """

    kernel = ElementwiseKernel("T grad, T lr, T momRate", "T param, T v",
                               "v = momRate * v + grad; param -= lr * (grad + momRate * v);",
                               "macrobatch_nesterov_sgd")

    def __init__(self, learnRate=1e-3, momRate=0.9):
        super().__init__(learnRate)
        self.momRate = self.checkHyper("momRate", momRate, high=1.0)

    def initState(self, param):
        return (xp.zeros_like(param),)

    def stepScalars(self):
        return self.learnRate, self.momRate

    def updateCpu(self, param, grad, state, scratch, scalars):
        lr, momRate = scalars
        v, = state
        v *= momRate
        v += grad
        xp.multiply(v, momRate, out=scratch)
        scratch += grad
        scratch *= lr
        param -= scratch

    def updateGpu(self, param, grad, state, scalars):
        self.kernel(grad, *scalars, param, *state)
