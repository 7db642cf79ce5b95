"""Adam: adaptive moment estimation with bias correction (Kingma & Ba, 2015), optionally AMSGrad."""
import math

from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .optimizer import Optimizer


def adamKernel(amsgrad):
    """The fused update; with amsgrad the denominator takes vMax, the running maximum of v (a NaN in v
    is kept, as torch.maximum keeps it)."""
    denominator = "vMax" if amsgrad else "v"
    return ElementwiseKernel(
        "T grad, T stepSize, T beta1, T oneMinusBeta1, T beta2, T oneMinusBeta2, T epsHat, T decayFactor",
        "T param, T m, T v" + (", T vMax" if amsgrad else ""),
        "m = beta1 * m + oneMinusBeta1 * grad;"
        "v = beta2 * v + oneMinusBeta2 * grad * grad;"
        + ("if (!(vMax >= v)) vMax = v;" if amsgrad else "")
        + f"param = decayFactor * param - stepSize * m / (sqrt({denominator}) + epsHat);",
        "macrobatch_adam_amsgrad" if amsgrad else "macrobatch_adam")


class Adam(Optimizer):
    """m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
    p -= learnRate / c1 * m / (sqrt(v / c2) + epsilon),  with c = 1 - beta^t at step t
    (torch.optim.Adam's update).

    The corrections are folded on the host into stepSize = learnRate sqrt(c2) / c1 and
    epsHat = epsilon sqrt(c2), an exact rewrite that leaves the kernel free of the step count:
    p -= stepSize * m / (sqrt(v) + epsHat). 1 - beta1 and 1 - beta2 are computed there too, in double
    precision: in float32, 1 - 0.999f is off by 1.3e-5 (every step 6.4e-6 too long), as torch is not.

    beta1, beta2: in [0, 1); epsilon > 0 keeps the division finite where gradients stay zero.
    amsgrad: divide by the square root of vMax, the largest v so far, instead of v (Reddi et al., 2018;
    torch's amsgrad=True), so that no element's step grows when its gradients shrink; vMax is a third
    state array, saved with the others by getState.
    """

    # decayFactor multiplies p before the step: 1 here, 1 - learnRate * weightDecay in AdamW.
    kernel = adamKernel(amsgrad=False)
    amsgradKernel = adamKernel(amsgrad=True)

    def __init__(self, learnRate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, amsgrad=False):
        super().__init__(learnRate)
        self.beta1 = self.checkHyper("beta1", beta1, high=1.0)
        self.beta2 = self.checkHyper("beta2", beta2, high=1.0)
        self.epsilon = self.checkHyper("epsilon", epsilon, lowOpen=True)
        self.amsgrad = bool(amsgrad)

    def initState(self, param):
        return tuple(xp.zeros_like(param) for _ in range(3 if self.amsgrad else 2))

    def decayFactor(self):
        return 1.0

    def stepScalars(self):
        c1 = 1.0 - self.beta1 ** self.steps
        sqrtC2 = math.sqrt(1.0 - self.beta2 ** self.steps)
        return (self.learnRate * sqrtC2 / c1, self.beta1, 1.0 - self.beta1, self.beta2, 1.0 - self.beta2,
                self.epsilon * sqrtC2, self.decayFactor())

    def updateCpu(self, param, grad, state, scratch, scalars):
        stepSize, beta1, oneMinusBeta1, beta2, oneMinusBeta2, epsHat, decayFactor = scalars
        m, v = state[:2]
        m *= beta1
        xp.multiply(grad, oneMinusBeta1, out=scratch)
        m += scratch
        v *= beta2
        xp.multiply(grad, grad, out=scratch)
        scratch *= oneMinusBeta2
        v += scratch
        if self.amsgrad:
            xp.maximum(state[2], v, out=state[2])
        xp.sqrt(state[-1], out=scratch)
        scratch += epsHat
        xp.divide(m, scratch, out=scratch)
        scratch *= stepSize
        if decayFactor != 1.0:
            param *= decayFactor
        param -= scratch

    def updateGpu(self, param, grad, state, scalars):
        self.launch(self.amsgradKernel if self.amsgrad else self.kernel, grad, *scalars, param, *state)
