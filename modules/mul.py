"""Mul: the elementwise product of several arrays (gates, attention masks)."""
from ..engine.backend import xp
from .elementwisejoin import ElementwiseJoin


class Mul(ElementwiseJoin):
    """Multiplies a list of arrays of one shape elementwise. The gradient of input i is the output
    gradient times the product of the other inputs (formed without dividing, so zeros are exact)."""

    ufunc = staticmethod(xp.multiply)

    def updateGrad(self, grad):
        data = self.inData
        return [self.fold([grad] + data[:i] + data[i + 1:]) for i in range(len(data))]
