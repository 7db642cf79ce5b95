"""BatchNorm: batch normalisation of (batch, maps) inputs, the computation BatchNorm2D reuses."""
import math

from ..engine.backend import isCuda, xp
from ..engine.dtype import defaultDtype
from ..engine.errors import ShapeError
from ..engine.kernels import ElementwiseKernel
from ..engine.variable import Variable
from .module import Module


class BatchNorm(Module):
    """y = (x - mean) / sqrt(var + epsilon) * scale + bias per map, on (batch, maps) inputs.

    Train mode normalises with the batch's statistics (biased variance) and updates the running
    ``mean`` and ``var`` attrs as PyTorch does: running = (1 - momentum) * running + momentum * batch,
    with the unbiased batch variance; its backward is the full gradient through the batch statistics.
    Eval mode normalises with the running statistics, so its backward is the affine one.
    affine: train ``scale`` (init 1) and ``bias`` (init 0), both of shape (maps,).

    Subclasses set ``rank`` and ``layout``: statistics are taken over every axis but axis 1 (maps).
    """

    rank = 2
    layout = "(batch, {maps})"

    forwardKernel = ElementwiseKernel(
        "T x, T mean, T invstd, T scale, T bias", "T xhat, T y",
        "xhat = (x - mean) * invstd; y = xhat * scale + bias",
        "macrobatch_batchnorm_forward")
    backwardKernel = ElementwiseKernel(
        "T g, T xhat, T gmean, T gxmean, T k", "T dx",
        "dx = k * (g - gmean - xhat * gxmean)",
        "macrobatch_batchnorm_backward")

    def __init__(self, maps, epsilon=1e-5, momentum=0.1, affine=True, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.maps, self.epsilon, self.momentum, self.affine = maps, epsilon, momentum, affine
        self.axes = (0,) + tuple(range(2, self.rank))
        self.statShape = (1, maps) + (1,) * (self.rank - 2)
        if affine:
            self.vars["scale"] = Variable(xp.ones((maps,), dtype=defaultDtype))
            self.vars["bias"] = Variable(xp.zeros((maps,), dtype=defaultDtype))
        self.attrs["mean"] = xp.zeros((maps,), dtype=defaultDtype)
        self.attrs["var"] = xp.ones((maps,), dtype=defaultDtype)
        self.xhat = self.invstd = self.gradSums = None
        self.batchStats = True

    @property
    def dtype(self):
        """The running statistics set the dtype even without affine parameters."""
        return self.attrs["mean"].dtype

    def checkDataShape(self, shape):
        if len(shape) != self.rank or shape[1] != self.maps:
            raise ShapeError(f"{self.describe()}: expected input of shape {self.layout.format(maps=self.maps)}, "
                             f"got {tuple(shape)}")
        if self.train and math.prod(shape) // self.maps < 2:
            raise ShapeError(f"{self.describe()}: train mode needs more than one value per map to take "
                             f"batch statistics, got input of shape {tuple(shape)}")

    def scaleBias(self):
        """scale and bias shaped to broadcast against the input."""
        return (self.vars["scale"].data.reshape(self.statShape), self.vars["bias"].data.reshape(self.statShape))

    def updateData(self, data):
        self.batchStats = self.train
        if self.train:
            mean = data.mean(axis=self.axes, keepdims=True)
            var = data.var(axis=self.axes, keepdims=True)
            self.updateRunning(mean, var, data.size // self.maps)
        else:
            mean, var = (self.attrs[key].reshape(self.statShape) for key in ("mean", "var"))
        self.invstd = 1 / xp.sqrt(var + self.epsilon)
        if isCuda:
            one, zero = data.dtype.type(1), data.dtype.type(0)
            scale, bias = self.scaleBias() if self.affine else (one, zero)
            self.xhat, out = self.forwardKernel(data, mean, self.invstd, scale, bias)
            return out
        self.xhat = data - mean
        self.xhat *= self.invstd
        if not self.affine:
            return self.xhat
        scale, bias = self.scaleBias()
        out = self.xhat * scale
        out += bias
        return out

    def updateRunning(self, mean, var, count):
        """Blend the batch statistics into the running ones, with the unbiased variance as PyTorch."""
        m = self.momentum
        for key, stat, factor in (("mean", mean, 1.0), ("var", var, count / (count - 1))):
            running = self.attrs[key]
            running *= 1 - m
            running += (m * factor) * stat.reshape(self.maps)

    def backward(self, grad, updGrad=True, updParamGrads=True):
        self.gradSums = None  # the sums of this grad, shared by updateGrad and accGradParams
        return super().backward(grad, updGrad, updParamGrads)

    def sumGrads(self, grad):
        """Per-map sums of grad and of grad * xhat, computed once per backward."""
        if self.gradSums is None:
            self.gradSums = (grad.sum(axis=self.axes, keepdims=True),
                             (grad * self.xhat).sum(axis=self.axes, keepdims=True))
        return self.gradSums

    def updateGrad(self, grad):
        k = self.invstd * self.scaleBias()[0] if self.affine else self.invstd
        if not self.batchStats:
            return grad * k
        count = self.xhat.size // self.maps
        gsum, gxsum = self.sumGrads(grad)
        gmean, gxmean = gsum / count, gxsum / count
        if isCuda:
            return self.backwardKernel(grad, self.xhat, gmean, gxmean, k)
        dx = self.xhat * -gxmean
        dx += grad
        dx -= gmean
        dx *= k
        return dx

    def accGradParams(self, grad):
        gsum, gxsum = self.sumGrads(grad)
        self.vars["scale"].accumulate(gxsum)
        self.vars["bias"].accumulate(gsum)
