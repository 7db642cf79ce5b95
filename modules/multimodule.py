"""MultiModule: the base of modules whose input or output is a list of arrays."""
import numpy

from ..engine.backend import checkOnDevice
from ..engine.dtype import checkFloat
from ..engine.errors import DtypeError, ShapeError
from .module import Module


def shapeOf(data):
    """An array's shape, or the list of shapes of a list of arrays (None stays None)."""
    if isinstance(data, list):
        return [shapeOf(item) for item in data]
    return None if data is None else tuple(data.shape)


def flatArrays(data):
    """The arrays of an array or a (nested) list of arrays, in order, None left out."""
    if isinstance(data, list):
        return [ary for item in data for ary in flatArrays(item)]
    return [] if data is None else [data]


class MultiModule(Module):
    """A module whose input, output or both may be a list of arrays (Concat, Split, Add, Mul, Graph).

    The protocol extends Module's: ``__call__`` takes an array or a list of arrays (a tuple is read as
    a list); ``checkDataType`` sees each array's dtype and ``checkDataShape`` the shape, or the list of
    shapes; ``updateData`` returns an array or a list. ``backward`` takes a gradient with the output's
    structure, in which None stands for an output that never reached the loss (its gradient is zero),
    and ``updateGrad`` returns one with the input's structure. ``sameDtype``: every input array must
    have one dtype (the elementwise joins); containers clear it and let their children check.
    """

    sameDtype = True

    def __call__(self, data):
        data = list(data) if isinstance(data, tuple) else data
        arrays = flatArrays(data)
        for ary in arrays:
            checkOnDevice(ary, self.describe())
            self.checkDataType(ary.dtype)
        if self.sameDtype and len({numpy.dtype(ary.dtype) for ary in arrays}) > 1:
            raise DtypeError(f"{self.describe()}: inputs must share one dtype, got "
                             f"{[numpy.dtype(ary.dtype).name for ary in arrays]}")
        self.checkDataShape(shapeOf(data))
        self.inData = data
        self.data = self.updateData(data)
        return self.data

    def backward(self, grad, updGrad=True, updParamGrads=True):
        self.checkGrad(grad)
        self.grad = self.updateGrad(grad) if updGrad else None
        if updParamGrads and self.vars:
            self.accGradParams(grad)
        return self.grad

    def checkGrad(self, grad):
        """ShapeError unless grad has the structure and shapes of the last output (None entries allowed)."""
        for ary in flatArrays(grad):
            checkOnDevice(ary, f"{self.describe()} backward")
        expected, got = shapeOf(self.data), shapeOf(grad)
        if self.data is None or _fits(got, expected):
            return
        raise ShapeError(f"{self.describe()}: gradient of shape {got} does not match the output of shape {expected}")

    def checkDataType(self, dtype):
        checkFloat(dtype, self.describe())

    def checkInputList(self, shapes, count=None):
        """ShapeError unless the input is a list of arrays (of count of them when given, else at least
        one) of one rank; returns that rank."""
        want = "a list of arrays" if count is None else f"a list of {count} arrays"
        if not isinstance(shapes, list) or any(isinstance(s, list) for s in shapes):
            raise ShapeError(f"{self.describe()}: expected {want}, got an input of shape {shapes}")
        if not shapes or (count is not None and len(shapes) != count):
            raise ShapeError(f"{self.describe()}: expected {want}, got {len(shapes)}")
        if len({len(s) for s in shapes}) > 1:
            raise ShapeError(f"{self.describe()}: inputs must have one rank, got shapes {shapes}")
        return len(shapes[0])

    def checkAxis(self, axis, rank):
        """axis (negative counts from the end) as an index into a shape of that rank, or ShapeError."""
        if not -rank <= axis < rank:
            raise ShapeError(f"{self.describe()}: axis {axis} is out of range for inputs of rank {rank}")
        return axis % rank


def _fits(got, expected):
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(
            g is None or _fits(g, e) for g, e in zip(got, expected))
    return got == expected
