"""Split: one array cut into parts along one axis."""
import itertools
import numbers

from ..engine.backend import xp
from ..engine.errors import ShapeError
from .multimodule import MultiModule


class Split(MultiModule):
    """Cuts its input along axis into a list of parts: sections is either the number of equal parts
    (as numpy.split) or the list of part sizes, which must add up to the axis (as torch.split with a
    list). The parts are views of the input, so the forward pass copies nothing; backward writes the
    parts' gradients into one array, zeros for a part whose gradient is None (an output left unused)."""

    def __init__(self, axis=1, sections=2, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        if isinstance(sections, numbers.Integral) and not isinstance(sections, bool):
            valid = sections > 0
        else:
            sections = list(sections)
            valid = bool(sections) and all(isinstance(n, numbers.Integral) and n > 0 for n in sections)
        if not valid:
            raise ValueError(f"sections must be a positive int or a list of positive sizes, got {sections!r}")
        self.axis, self.sections = axis, sections

    def sizes(self, length):
        """The part sizes along an axis of that length."""
        if isinstance(self.sections, list):
            return self.sections
        return [length // self.sections] * self.sections

    def checkDataShape(self, shape):
        if isinstance(shape, list):
            raise ShapeError(f"{self.describe()}: expected one array, got a list of shapes {shape}")
        axis = self.checkAxis(self.axis, len(shape))
        length = shape[axis]
        if sum(self.sizes(length)) != length:
            raise ShapeError(f"{self.describe()}: cannot split axis {axis} of input shape {tuple(shape)} into "
                             f"{'sizes ' if isinstance(self.sections, list) else ''}{self.sections}")

    def updateData(self, data):
        bounds = itertools.accumulate(self.sizes(data.shape[self.axis]))
        return xp.split(data, list(bounds)[:-1], axis=self.axis)

    def updateGrad(self, grad):
        out = xp.empty_like(self.inData)
        for part, g in zip(self.updateData(out), grad):
            if g is None:
                part.fill(0)
            else:
                xp.copyto(part, g)
        return out
