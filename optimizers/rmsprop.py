"""RMSProp: gradient steps scaled by a running root mean square of the gradients (Hinton, 2012)."""
from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .optimizer import Optimizer


class RMSProp(Optimizer):
    """ms = decay * ms + (1 - decay) g^2;  p -= learnRate * g / (sqrt(ms) + epsilon)
    (torch.optim.RMSprop with alpha=decay, not centered, no momentum; epsilon is added outside
    the square root).

    decay: in [0, 1); epsilon > 0 keeps the division finite where gradients stay zero. 1 - decay is
    computed on the host in double precision (in float32, 1 - 0.999f is off by 1.3e-5).
    """

    kernel = ElementwiseKernel(
        "T grad, T lr, T decay, T oneMinusDecay, T epsilon", "T param, T ms",
        "ms = decay * ms + oneMinusDecay * grad * grad; param -= lr * grad / (sqrt(ms) + epsilon);",
        "macrobatch_rmsprop")

    def __init__(self, learnRate=1e-2, decay=0.99, epsilon=1e-8):
        super().__init__(learnRate)
        self.decay = self.checkHyper("decay", decay, high=1.0)
        self.epsilon = self.checkHyper("epsilon", epsilon, lowOpen=True)

    def initState(self, param):
        return (xp.zeros_like(param),)

    def stepScalars(self):
        return self.learnRate, self.decay, 1.0 - self.decay, self.epsilon

    def updateCpu(self, param, grad, state, scratch, scalars):
        lr, decay, oneMinusDecay, epsilon = scalars
        ms, = state
        ms *= decay
        xp.multiply(grad, grad, out=scratch)
        scratch *= oneMinusDecay
        ms += scratch
        xp.sqrt(ms, out=scratch)
        scratch += epsilon
        xp.divide(grad, scratch, out=scratch)
        scratch *= lr
        param -= scratch
