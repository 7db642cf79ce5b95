"""Pad2D: pads the height and width of images."""
import numbers

from ..engine.backend import xp
from ..engine.errors import ShapeError
from .module import Module


def _isInt(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _fold(grad, axis, before, after, mode):
    """The gradient along one padded axis mapped back to the unpadded one: its inner part plus, for
    reflect and replicate, the gradient of each border pixel summed onto the pixel it copies."""
    n = grad.shape[axis] - before - after

    def part(start, stop):
        return (slice(None),) * axis + (slice(start, stop),)

    inner = grad[part(before, before + n)]
    if mode == "constant" or before == after == 0:
        return inner
    inner = inner.copy()
    if mode == "reflect":  # padded pixel before - 1 - i mirrors pixel 1 + i, and before + n + i pixel n - 2 - i
        inner[part(1, before + 1)] += xp.flip(grad[part(0, before)], axis)
        inner[part(n - 1 - after, n - 1)] += xp.flip(grad[part(before + n, before + n + after)], axis)
    else:  # replicate: every border pixel copies the edge pixel
        inner[part(0, 1)] += grad[part(0, before)].sum(axis, keepdims=True)
        inner[part(n - 1, n)] += grad[part(before + n, before + n + after)].sum(axis, keepdims=True)
    return inner


class Pad2D(Module):
    """Pads (batch, maps, height, width) inputs on the last two axes, as torch.nn.functional.pad.

    pad: (left, right, top, bottom), the pixels added on each side (torch's order), or one int for all
    four. mode: "constant" (value everywhere in the border), "reflect" (mirrored about the edge pixel,
    which is not repeated: each pad must be smaller than the side it mirrors) or "replicate" (the edge
    pixel repeated). Backward sums the gradient of each reflected or replicated pixel back onto the
    pixel it copies; for "constant" it is the gradient's inner part (a view).
    """

    numpyModes = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}

    def __init__(self, pad, mode="constant", value=0, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        sides = (pad,) * 4 if _isInt(pad) else tuple(pad) if isinstance(pad, (tuple, list)) else ()
        if len(sides) != 4 or not all(_isInt(p) and p >= 0 for p in sides):
            raise ValueError(f"{self.describe()}: pad must be an int or a (left, right, top, bottom) tuple "
                             f"of ints >= 0, got {pad!r}")
        if mode not in self.numpyModes:
            raise ValueError(f"{self.describe()}: mode must be one of {sorted(self.numpyModes)}, got {mode!r}")
        self.left, self.right, self.top, self.bottom = (int(p) for p in sides)
        self.mode, self.value = mode, value

    def checkDataShape(self, shape):
        self.checkRank(shape, 4, "(batch, maps, height, width)")
        height, width = shape[2:]
        if self.mode == "reflect" and (max(self.top, self.bottom) >= height or max(self.left, self.right) >= width):
            raise ShapeError(f"{self.describe()}: reflect padding (left, right, top, bottom) = "
                             f"{(self.left, self.right, self.top, self.bottom)} must be smaller than the "
                             f"image it mirrors, got input of shape {tuple(shape)}")

    def updateData(self, data):
        widths = ((0, 0), (0, 0), (self.top, self.bottom), (self.left, self.right))
        if self.mode == "constant":
            return xp.pad(data, widths, mode="constant", constant_values=self.value)
        return xp.pad(data, widths, mode=self.numpyModes[self.mode])

    def updateGrad(self, grad):
        grad = _fold(grad, 3, self.left, self.right, self.mode)
        return _fold(grad, 2, self.top, self.bottom, self.mode)
