"""ElementwiseJoin: the base of Add and Mul, which fold a list of same-shape arrays with one ufunc."""
from ..engine.errors import ShapeError
from .multimodule import MultiModule


class ElementwiseJoin(MultiModule):
    """Combines a list of arrays of one shape elementwise with ``ufunc`` (a subclass sets it to xp.add,
    xp.multiply): the first pair into a new array, the rest into it in place, so the inputs stay intact."""

    ufunc = None

    def __init__(self, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())

    def checkDataShape(self, shapes):
        self.checkInputList(shapes)
        if len(set(shapes)) > 1:
            raise ShapeError(f"{self.describe()}: inputs must have one shape, got {shapes}")

    def updateData(self, data):
        return self.fold(data)

    def fold(self, arrays):
        out = self.ufunc(arrays[0], arrays[1]) if len(arrays) > 1 else arrays[0].copy()
        for ary in arrays[2:]:
            self.ufunc(out, ary, out=out)
        return out
