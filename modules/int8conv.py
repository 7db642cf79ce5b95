"""Int8Conv: a 1-3D convolution with int8 weights and an int8-rounded input, for inference."""
import numpy

from ..engine.backend import xp
from ..engine.int8 import dequantize, fakeQuantize
from .convnd import ConvND


class Int8Conv(ConvND):
    """ConvND's forward (im2col and one GEMM) on q(x) with W stored as int8, one float32 scale per output map.

    nd: 1, 2 or 3 spatial dims (the Conv1D/2D/3D it replaces); the other arguments are ConvND's.
    attrs: 'W' weightShape() int8, 'wScale' (outmaps,) and 'inScale' (1,) float32 (the input's scale, from
    calibration); b stays float32. The input is rounded to the int8 grid of inScale and W is dequantised for
    the call, so the float GEMM computes what an int8 GEMM with int32 accumulation would (exactly while the
    integer sums stay below 2**24): neither NumPy nor CuPy's matmul has a fast int8 GEMM. Made by
    deploy.quantize.quantizeModel; inference only (no backward).
    """

    def __init__(self, nd, inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True, name=None):
        if nd not in (1, 2, 3):
            raise ValueError(f"Int8Conv: nd must be 1, 2 or 3 spatial dims, got {nd!r}")
        self.nd = nd
        super().__init__(inmaps, outmaps, size, stride, pad, dilation, groups, useBias, name=name)
        self.registerBlueprint(locals())
        del self.vars["W"]
        self.attrs["W"] = xp.zeros(self.weightShape(), dtype=numpy.int8)
        self.attrs["wScale"] = xp.ones((outmaps,), dtype=numpy.float32)
        self.attrs["inScale"] = xp.ones((1,), dtype=numpy.float32)

    def fusedWith(self, after):
        """None: the int8 weights keep their quantisation grid; a BatchNorm after them runs on its own."""
        return None

    def castAttrs(self, dtype):
        """Keep the int8 weights and float32 scales as they are: the layer computes in its input's dtype."""

    def groupedWeight(self):
        """The dequantised W, in the dtype of the input being computed, grouped for ConvND's GEMM."""
        W = dequantize(self.attrs["W"], self.attrs["wScale"], 0, self.inData.dtype)
        return self.grouped(W.reshape(W.shape[0], -1))

    def updateData(self, data):
        return super().updateData(fakeQuantize(data, self.attrs["inScale"]))

    perSampleGrads = None  # inference only: per-sample gradients are refused up front, by name

    def backward(self, grad, updGrad=True, updParamGrads=True):
        raise NotImplementedError(f"{self.describe()}: int8 layers are for inference; train the float model")
