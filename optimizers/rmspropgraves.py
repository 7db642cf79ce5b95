"""RMSPropGraves: centred RMSProp, the running variance instead of the raw second moment (Graves, 2013)."""
from ..engine.backend import xp
from ..engine.kernels import ElementwiseKernel
from .optimizer import Optimizer


class RMSPropGraves(Optimizer):
    """ms = decay ms + (1 - decay) g^2;  mg = mg + (1 - decay) (g - mg);
    step = g / (sqrt(ms - mg^2) + epsilon);
    without momentum p -= learnRate * step; with it v = momRate v + step, p -= learnRate * v
    (torch.optim.RMSprop(centered=True, momentum=momRate); epsilon outside the square root, as torch,
    where Graves and Chainer put it inside).

    decay, momRate: in [0, 1); epsilon > 0. The velocity v is kept only when momRate > 0. 1 - decay is
    computed on the host in double precision (in float32, 1 - 0.999f is off by 1.3e-5).
    """

    kernel = ElementwiseKernel(
        "T grad, T lr, T decay, T oneMinusDecay, T epsilon", "T param, T ms, T mg",
        "ms = decay * ms + oneMinusDecay * grad * grad; mg += oneMinusDecay * (grad - mg);"
        "param -= lr * grad / (sqrt(ms - mg * mg) + epsilon);",
        "macrobatch_rmsprop_graves")
    momentumKernel = ElementwiseKernel(
        "T grad, T lr, T decay, T oneMinusDecay, T epsilon, T momRate", "T param, T ms, T mg, T v",
        "ms = decay * ms + oneMinusDecay * grad * grad; mg += oneMinusDecay * (grad - mg);"
        "v = momRate * v + grad / (sqrt(ms - mg * mg) + epsilon); param -= lr * v;",
        "macrobatch_rmsprop_graves_momentum")

    def __init__(self, learnRate=1e-2, decay=0.99, epsilon=1e-8, momRate=0.0):
        super().__init__(learnRate)
        self.decay = self.checkHyper("decay", decay, high=1.0)
        self.epsilon = self.checkHyper("epsilon", epsilon, lowOpen=True)
        self.momRate = self.checkHyper("momRate", momRate, high=1.0)

    def initState(self, param):
        return tuple(xp.zeros_like(param) for _ in range(3 if self.momRate else 2))

    def stepScalars(self):
        return (self.learnRate, self.decay, 1.0 - self.decay, self.epsilon) + ((self.momRate,) if self.momRate else ())

    def updateGpu(self, param, grad, state, scalars):
        self.launch(self.momentumKernel if self.momRate else self.kernel, grad, *scalars, param, *state)

    def updateCpu(self, param, grad, state, scratch, scalars):
        lr, decay, oneMinusDecay, epsilon = scalars[:4]
        ms, mg = state[:2]
        ms *= decay
        xp.multiply(grad, grad, out=scratch)
        scratch *= oneMinusDecay
        ms += scratch
        xp.subtract(grad, mg, out=scratch)
        scratch *= oneMinusDecay
        mg += scratch
        xp.multiply(mg, mg, out=scratch)
        xp.subtract(ms, scratch, out=scratch)
        xp.sqrt(scratch, out=scratch)
        scratch += epsilon
        xp.divide(grad, scratch, out=scratch)
        if self.momRate:
            v, = state[2:]
            v *= self.momRate
            v += scratch
            xp.multiply(v, lr, out=scratch)
        else:
            scratch *= lr
        param -= scratch
