"""NesterovSGD: gradient descent with Nesterov momentum."""
from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .momentumsgd import MomentumSGD


class NesterovSGD(MomentumSGD):
    """v = momRate * v + g;  p -= learnRate * (g + momRate * v) (torch.optim.SGD with
    nesterov=True, dampening 0: the step looks ahead along the updated velocity).

    momRate: in [0, 1).
    """

    kernel = ElementwiseKernel("T grad, T lr, T momRate", "T param, T v",
                               "v = momRate * v + grad; param -= lr * (grad + momRate * v);",
                               "macrobatch_nesterov_sgd")

    def updateCpu(self, param, grad, state, scratch, scalars):
        lr, momRate = scalars
        v, = state
        v *= momRate
        v += grad
        xp.multiply(v, momRate, out=scratch)
        scratch += grad
        scratch *= lr
        param -= scratch
