"""LARS: momentum SGD with a per-layer learning rate from the ratio of weight and gradient norms
(You, Gitman & Ginsburg, 2017, "Large Batch Training of Convolutional Networks", Algorithm 1)."""
from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .optimizer import Optimizer


class LARS(Optimizer):
    """For every parameter array w (a layer's weight or bias) with gradient g, each step:

        local = trustCoef ||w|| / (||g|| + weightDecay ||w||)   (1 where ||w|| or ||g|| is 0)
        v = momRate v + learnRate local (g + weightDecay w);  w -= v

    (the paper's Algorithm 1; torch has no LARS). The trust ratio ``local`` is computed per
    Variable in prepareStep and written over that Variable's stretch of a per-element state array,
    so the update itself stays one fused elementwise pass per buffer. That array is rewritten every
    step: getState saves it, but nothing depends on its saved value.

    momRate: in [0, 1); weightDecay: >= 0; trustCoef (the paper's eta): > 0.
    """

    kernel = ElementwiseKernel(
        "T grad, T lr, T momRate, T weightDecay", "T param, T v, T trust",
        "v = momRate * v + lr * trust * (grad + weightDecay * param); param -= v;",
        "macrobatch_lars")

    def __init__(self, learnRate=1e-1, momRate=0.9, weightDecay=5e-4, trustCoef=1e-3):
        super().__init__(learnRate)
        self.momRate = self.checkHyper("momRate", momRate, high=1.0)
        self.weightDecay = self.checkHyper("weightDecay", weightDecay)
        self.trustCoef = self.checkHyper("trustCoef", trustCoef, lowOpen=True)

    def initState(self, param):
        return xp.zeros_like(param), xp.ones_like(param)

    def stepScalars(self):
        return self.learnRate, self.momRate, self.weightDecay

    def prepareStep(self):
        """Each parameter's trust ratio, from its norms, into its stretch of the trust array; on the
        device throughout (a few tiny reductions per parameter, never a host read)."""
        for (param, grad, (_, trust), _), segments in zip(self.slots, self.segments):
            param, grad, trust = param.reshape(-1), grad.reshape(-1), trust.reshape(-1)
            for _, start, stop in segments:
                w, g = param[start:stop], grad[start:stop]
                wNorm, gNorm = xp.sqrt(xp.vdot(w, w)), xp.sqrt(xp.vdot(g, g))
                usable = (wNorm > 0) & (gNorm > 0)
                # the guarded denominator keeps 0 / 0 out of the branch that is not taken
                ratio = self.trustCoef * wNorm / xp.where(usable, gNorm + self.weightDecay * wNorm, 1.0)
                trust[start:stop] = xp.where(usable, ratio, 1.0)

    def updateCpu(self, param, grad, state, scratch, scalars):
        lr, momRate, weightDecay = scalars
        v, trust = state
        xp.multiply(param, weightDecay, out=scratch)
        scratch += grad
        scratch *= trust
        scratch *= lr
        v *= momRate
        v += scratch
        param -= v
