"""Int8Linear: Linear with int8 weights and an int8-rounded input, for inference."""
import numpy

from ..engine.backend import xp
from ..engine.gemm import matmul
from ..engine.int8 import dequantize, fakeQuantize
from .linear import Linear


class Int8Linear(Linear):
    """y = q(x) W + b with W stored as int8 and one float32 scale per output column.

    attrs: 'W' (insize, outsize) int8, 'wScale' (outsize,) and 'inScale' (1,) float32 (the input's scale,
    from calibration); b stays a float32 Variable. The input is rounded to the int8 grid of inScale and W is
    dequantised for the call, so one float GEMM in the input's dtype computes what an int8 GEMM with int32
    accumulation would (exactly, while the integer sums stay below 2**24): neither NumPy nor CuPy's matmul
    has a fast int8 GEMM. Made by deploy.quantize.quantizeModel; inference only (no backward).
    """

    def __init__(self, insize, outsize, useBias=True, name=None):
        super().__init__(insize, outsize, useBias, name=name)
        self.registerBlueprint(locals())
        del self.vars["W"]
        self.attrs["W"] = xp.zeros((insize, outsize), dtype=numpy.int8)
        self.attrs["wScale"] = xp.ones((outsize,), dtype=numpy.float32)
        self.attrs["inScale"] = xp.ones((1,), dtype=numpy.float32)

    def castAttrs(self, dtype):
        """Keep the int8 weights and float32 scales as they are: the layer computes in its input's dtype."""

    def updateData(self, data):
        W = dequantize(self.attrs["W"], self.attrs["wScale"], 1, data.dtype)
        out = matmul(fakeQuantize(data, self.attrs["inScale"]), W)
        if "b" in self.vars:
            out += self.vars["b"].data
        return out

    perSampleGrads = None  # inference only: per-sample gradients are refused up front, by name

    def backward(self, grad, updGrad=True, updParamGrads=True):
        raise NotImplementedError(f"{self.describe()}: int8 layers are for inference; train the float model")
