"""ClipByGlobalNorm: scale all gradients so that their joint L2 norm is at most maxNorm."""
from ..engine.backend import isCuda, xp
from ..engine.checks import checkHyper


class ClipByGlobalNorm:
    """A gradient hook (``optimizer.addHook(ClipByGlobalNorm(1.0))``) with the semantics of
    torch.nn.utils.clip_grad_norm_: the norm is taken over every gradient of the optimizer at once,
    and all of them are multiplied by min(1, maxNorm / (norm + 1e-6)).

    maxNorm: > 0. After each update ``norm`` holds the pre-clip global norm as a 0-d device array
    (float(hook.norm) reads it; on the GPU that waits for the device, so the update itself never does).
    """

    epsilon = 1e-6
    checkHyper = checkHyper

    def __init__(self, maxNorm):
        self.maxNorm = self.checkHyper("maxNorm", maxNorm, lowOpen=True)
        self.norm = None

    def __call__(self, grads):
        squares = xp.zeros((), dtype=xp.float64)
        for grad in grads:
            squares += xp.vdot(grad, grad)
        self.norm = xp.sqrt(squares)
        if isCuda:
            # the scale stays on the device: clipping never waits for the norm to reach the host
            scale = xp.minimum(self.maxNorm / (self.norm + self.epsilon), 1.0)
            for grad in grads:
                grad *= scale.astype(grad.dtype)
            return
        scale = self.maxNorm / (float(self.norm) + self.epsilon)
        # a NaN norm scales by NaN, as torch and the GPU path do
        if not scale >= 1.0:
            for grad in grads:
                grad *= scale
