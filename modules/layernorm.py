"""LayerNorm: normalisation of each sample over its trailing axes, the computation GroupNorm and
InstanceNorm2D reuse."""
import math

from ..engine.backend import isCuda, xp
from ..engine.dtype import defaultDtype
from ..engine.errors import ShapeError
from ..engine.im2col import buffer
from ..engine.kernels import ElementwiseKernel, ReductionKernel
from ..engine.variable import Variable
from .module import Module


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + epsilon) * scale + bias, with the mean and (biased) variance of each
    sample taken over its trailing normalizedShape axes, as PyTorch's LayerNorm.

    normalizedShape: an int or a tuple, the trailing shape of the inputs; affine (PyTorch's
    elementwise_affine): train ``scale`` (init 1) and ``bias`` (init 0) of that shape. There are no
    running statistics: train and eval mode compute the same.

    Subclasses normalise other groups of elements by overriding ``groups(shape)``, which views an input
    as (A, G, P, B): statistics are taken over (P, B) for each (a, g), and scale and bias, (G * P)
    values, apply along (G, P). For LayerNorm, A is every leading axis, G = B = 1 and P the normalised
    elements. The forward pass keeps xhat = (x - mean) / std; the backward pass is, per group of n
    elements, dx = (d - sum(d) / n - xhat * sum(d * xhat) / n) / std with d = grad * scale.
    """

    # CUDA: the statistics and gradient sums are reductions over (P, B) of the (A, G, P, B) view
    squaredDeviationKernel = ReductionKernel("T x, T mean", "T s", "(x - mean) * (x - mean)", "a + b", "s = a", "0",
                                             "macrobatch_layernorm_squareddeviation")
    normKernel = ElementwiseKernel("T x, T mean, T invstd, T scale, T bias", "T xhat, T y",
                                   "xhat = (x - mean) * invstd; y = xhat * scale + bias", "macrobatch_layernorm_forward")
    gradSumsKernel = ReductionKernel("T g, T scale, T xhat", "T s", "g * scale * xhat", "a + b", "s = a", "0",
                                     "macrobatch_layernorm_gradsums")
    backwardKernel = ElementwiseKernel("T g, T scale, T xhat, T dmean, T dxmean, T invstd", "T dx",
                                       "dx = invstd * (g * scale - dmean - xhat * dxmean)", "macrobatch_layernorm_backward")

    def __init__(self, normalizedShape, epsilon=1e-5, affine=True, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.normalizedShape = (normalizedShape,) if isinstance(normalizedShape, int) else tuple(normalizedShape)
        self.epsilon, self.affine = epsilon, affine
        if affine:
            self.vars["scale"] = Variable(xp.ones(self.normalizedShape, dtype=defaultDtype))
            self.vars["bias"] = Variable(xp.zeros(self.normalizedShape, dtype=defaultDtype))
        self.xhat = self.invstd = None
        self.scratch = None  # the CPU xhat array kept between calls of one shape (with affine)

    def checkDataShape(self, shape):
        k = len(self.normalizedShape)
        if len(shape) <= k or tuple(shape[-k:]) != self.normalizedShape:
            trailing = ", ".join(map(str, self.normalizedShape))
            raise ShapeError(f"{self.describe()}: expected input of shape (batch, ..., {trailing}), got {tuple(shape)}")

    def groups(self, shape):
        """(A, G, P, B) for an input of this shape (see the class docstring)."""
        count = math.prod(self.normalizedShape)
        return math.prod(shape) // count, 1, count, 1

    def paramViews(self, layout, dtype):
        """scale and bias shaped (1, G, P, 1) to broadcast against the (A, G, P, B) view; without affine,
        arrays of one 1 and one 0, for the CUDA kernels to take in the same places."""
        if not self.affine:
            return xp.ones((1, 1, 1, 1), dtype=dtype), xp.zeros((1, 1, 1, 1), dtype=dtype)
        return tuple(self.vars[k].data.reshape(1, layout[1], layout[2], 1) for k in ("scale", "bias"))

    def updateData(self, data):
        a, g, p, b = layout = self.groups(data.shape)
        scale, bias = self.paramViews(layout, data.dtype)
        if isCuda:
            view = data.reshape(layout)
            mean = view.mean(axis=(2, 3), keepdims=True)
            var = self.squaredDeviationKernel(view, mean, axis=(2, 3), keepdims=True) / (p * b)
            self.invstd = 1 / xp.sqrt(var + self.epsilon)
            self.xhat, out = self.normKernel(view, mean, self.invstd, scale, bias)
            return out.reshape(data.shape)
        # the statistics of each group, over its row of the (A * G, P * B) view; without affine xhat is
        # the output, so it is a new array, else a scratch array reused while the input shape holds
        rows = data.reshape(a * g, p * b)
        if self.affine:
            xhat = self.scratch = buffer(self.scratch, rows.shape, data.dtype)
        else:
            xhat = xp.empty_like(rows)
        xp.subtract(rows, rows.sum(axis=1, keepdims=True) / (p * b), out=xhat)
        var = xp.einsum("ij,ij->i", xhat, xhat) / (p * b)
        self.invstd = (1 / xp.sqrt(var + self.epsilon)).reshape(a, g, 1, 1)
        xhat *= self.invstd.reshape(-1, 1)
        self.xhat = xhat.reshape(layout)
        if not self.affine:
            return xhat.reshape(data.shape)
        out = self.xhat * scale
        out += bias
        return out.reshape(data.shape)

    def updateGrad(self, grad):
        a, g, p, b = layout = self.groups(grad.shape)
        scale, _ = self.paramViews(layout, grad.dtype)
        view = grad.reshape(layout)
        if isCuda:
            ones = xp.ones((1, 1, 1, 1), dtype=grad.dtype)
            dmean = self.gradSumsKernel(view, scale, ones, axis=(2, 3), keepdims=True) / (p * b)
            dxmean = self.gradSumsKernel(view, scale, self.xhat, axis=(2, 3), keepdims=True) / (p * b)
            return self.backwardKernel(view, scale, self.xhat, dmean, dxmean, self.invstd).reshape(grad.shape)
        d = (view * scale if self.affine else view).reshape(a * g, p * b)
        xhat = self.xhat.reshape(d.shape)
        dmean = d.sum(axis=1, keepdims=True) / (p * b)
        dxmean = xp.einsum("ij,ij->i", d, xhat).reshape(-1, 1) / (p * b)
        dx = xhat * -dxmean
        dx += d
        dx -= dmean
        dx *= self.invstd.reshape(-1, 1)
        return dx.reshape(grad.shape)

    def accGradParams(self, grad):
        view = grad.reshape(self.xhat.shape)
        self.vars["scale"].accumulate(xp.einsum("agpb,agpb->gp", view, self.xhat))
        self.vars["bias"].accumulate(xp.einsum("agpb->gp", view))
