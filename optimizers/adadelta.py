"""AdaDelta: steps scaled by the ratio of running RMS of updates and of gradients (Zeiler, 2012)."""
from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .optimizer import Optimizer


class AdaDelta(Optimizer):
    """ms = rho ms + (1 - rho) g^2;  delta = sqrt(md + epsilon) / sqrt(ms + epsilon) * g;
    md = rho md + (1 - rho) delta^2;  p -= learnRate * delta
    (torch.optim.Adadelta without weight decay; its defaults: learnRate 1, rho 0.9, epsilon 1e-6).

    rho: in [0, 1); epsilon > 0 starts the steps (md is 0 at first) and keeps the division finite.
    1 - rho is computed on the host in double precision (in float32, 1 - 0.999f is off by 1.3e-5).
    """

    scratchCount = 2
    kernel = ElementwiseKernel(
        "T grad, T lr, T rho, T oneMinusRho, T epsilon", "T param, T ms, T md",
        "ms = rho * ms + oneMinusRho * grad * grad;"
        "T delta = sqrt(md + epsilon) / sqrt(ms + epsilon) * grad;"
        "md = rho * md + oneMinusRho * delta * delta;"
        "param -= lr * delta;",
        "macrobatch_adadelta")

    def __init__(self, learnRate=1.0, rho=0.9, epsilon=1e-6):
        super().__init__(learnRate)
        self.rho = self.checkHyper("rho", rho, high=1.0)
        self.epsilon = self.checkHyper("epsilon", epsilon, lowOpen=True)

    def initState(self, param):
        return xp.zeros_like(param), xp.zeros_like(param)

    def stepScalars(self):
        return self.learnRate, self.rho, 1.0 - self.rho, self.epsilon

    def updateCpu(self, param, grad, state, scratch, scalars):
        lr, rho, oneMinusRho, epsilon = scalars
        ms, md = state
        std, delta = scratch
        ms *= rho
        xp.multiply(grad, grad, out=std)
        std *= oneMinusRho
        ms += std
        xp.add(ms, epsilon, out=std)
        xp.sqrt(std, out=std)
        xp.add(md, epsilon, out=delta)
        xp.sqrt(delta, out=delta)
        delta /= std
        delta *= grad
        md *= rho
        xp.multiply(delta, delta, out=std)
        std *= oneMinusRho
        md += std
        delta *= lr
        param -= delta
