"""ClipByValue: clamp every gradient element to [-clipValue, clipValue]."""
from ..engine.backend import xp
from ..engine.checks import checkHyper


class ClipByValue:
    """A gradient hook (``optimizer.addHook(ClipByValue(0.5))``) with the semantics of
    torch.nn.utils.clip_grad_value_: each element is clamped in place; NaNs stay NaN. clipValue: > 0."""

    checkHyper = checkHyper

    def __init__(self, clipValue):
        self.clipValue = self.checkHyper("clipValue", clipValue, lowOpen=True)

    def __call__(self, grads):
        for grad in grads:
            xp.clip(grad, -self.clipValue, self.clipValue, out=grad)
