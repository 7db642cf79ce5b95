"""Symmetric int8 arithmetic shared by the int8 layers and the quantizer: a real value v is stored as
round(v / scale) clipped to [-127, 127] (zero point 0), and read back as that integer times scale."""
import numpy

from ..engine.backend import xp

qmax = 127


def scaleFor(amax):
    """The scale that maps amax (the largest magnitude to represent, a number or an array) onto qmax, as
    float32; 1 where amax is 0, so an all-zero channel or activation quantizes to zeros instead of dividing
    by zero."""
    amax = numpy.asarray(amax, dtype=numpy.float32)
    return numpy.where(amax > 0, amax / qmax, 1).astype(numpy.float32)


def quantizeWeights(W, axis):
    """Per-output-channel symmetric quantisation of a host array W whose output channels lie along axis:
    returns (int8 array of W's shape, float32 scales of shape (W.shape[axis],)), one scale per channel from
    that channel's largest magnitude."""
    W = numpy.asarray(W, dtype=numpy.float32)
    others = tuple(i for i in range(W.ndim) if i != axis % W.ndim)
    scale = scaleFor(numpy.abs(W).max(axis=others))
    shaped = scale.reshape([-1 if i == axis % W.ndim else 1 for i in range(W.ndim)])
    return numpy.clip(numpy.rint(W / shaped), -qmax, qmax).astype(numpy.int8), scale


def dequantize(q, scale, axis, dtype):
    """q (int8, on the device) times its per-channel scale (channels along axis), in dtype: the float
    weights a layer computes with, made for one call and dropped after it."""
    shape = [-1 if i == axis % q.ndim else 1 for i in range(q.ndim)]
    return q.astype(dtype) * scale.astype(dtype).reshape(shape)


def fakeQuantize(x, scale):
    """x rounded to the int8 grid of scale (clipped to +-127 steps) and read back, in x's dtype: the
    QuantizeLinear/DequantizeLinear pair an int8 layer puts on its input."""
    scale = scale.astype(x.dtype)
    return xp.clip(xp.rint(x / scale), -qmax, qmax) * scale
