"""AdaGrad: per-parameter steps scaled by the accumulated squared gradients (Duchi et al., 2011)."""
from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .optimizer import Optimizer


class AdaGrad(Optimizer):
    """h += g^2;  p -= learnRate * g / (sqrt(h) + epsilon)  (torch.optim.Adagrad without
    learning-rate decay; h starts at zero).

    epsilon > 0 keeps the division finite where gradients stay zero.
    """

    kernel = ElementwiseKernel("T grad, T lr, T epsilon", "T param, T h",
                               "h += grad * grad; param -= lr * grad / (sqrt(h) + epsilon);",
                               "macrobatch_adagrad")

    def __init__(self, learnRate=1e-2, epsilon=1e-10):
        super().__init__(learnRate)
        self.epsilon = self.checkHyper("epsilon", epsilon, lowOpen=True)

    def initState(self, param):
        return (xp.zeros_like(param),)

    def stepScalars(self):
        return self.learnRate, self.epsilon

    def updateCpu(self, param, grad, state, scratch, scalars):
        lr, epsilon = scalars
        h, = state
        xp.multiply(grad, grad, out=scratch)
        h += scratch
        xp.sqrt(h, out=scratch)
        scratch += epsilon
        xp.divide(grad, scratch, out=scratch)
        scratch *= lr
        param -= scratch
