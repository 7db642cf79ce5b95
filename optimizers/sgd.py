"""SGD: plain gradient descent."""
from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .optimizer import Optimizer


class SGD(Optimizer):
    """p -= learnRate * g (as torch.optim.SGD without momentum)."""

    kernel = ElementwiseKernel("T grad, T lr", "T param", "param -= lr * grad;", "macrobatch_sgd")

    def __init__(self, learnRate=1e-3):
        super().__init__(learnRate)

    def stepScalars(self):
        return (self.learnRate,)

    def updateCpu(self, param, grad, state, scratch, scalars):
        lr, = scalars
        xp.multiply(grad, lr, out=scratch)
        param -= scratch
