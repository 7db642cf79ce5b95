"""MomentumSGD: gradient descent with heavy-ball momentum."""
from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .optimizer import Optimizer


class MomentumSGD(Optimizer):
    """v = momRate * v + g;  p -= learnRate * v (torch.optim.SGD's formulation with momentum,
    dampening 0: the velocity sums raw gradients and the learning rate scales the step).

    momRate: in [0, 1).
    """

    kernel = ElementwiseKernel("T grad, T lr, T momRate", "T param, T v",
                               "v = momRate * v + grad; param -= lr * v;", "macrobatch_momentum_sgd")

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
        xp.multiply(v, lr, out=scratch)
        param -= scratch
