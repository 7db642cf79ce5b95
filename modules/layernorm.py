"""LayerNorm: normalisation of each sample over its trailing axes, the computation GroupNorm and
InstanceNorm2D reuse."""
import math

from ..engine.backend import isCuda, xp
from ..engine.dtype import defaultDtype, statDtype
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

    Precision: the sums (statistics, gradient sums, parameter gradients), the mean and 1 / std are in
    float32 for float16 data (engine.dtype.statDtype), so a long sum neither loses the 11-bit mantissa nor
    overflows float16's range; the elementwise passes (xhat, the output, the input gradient) are in the
    data's dtype, each element computed from the float32 statistics.
    """

    # CUDA: the statistics and gradient sums are reductions over (P, B) of the (A, G, P, B) view, taken in
    # S = statDtype(T), the dtype of the mean, 1 / std and the gradient sums the elementwise kernels read
    squaredDeviationKernel = ReductionKernel("T x, S mean", "S s", "((S)x - mean) * ((S)x - mean)", "a + b", "s = a",
                                             "0", "macrobatch_layernorm_squareddeviation")
    normKernel = ElementwiseKernel("T x, S mean, S invstd, T scale, T bias", "T xhat, T y",
                                   "S h = ((S)x - mean) * invstd; xhat = (T)h; y = (T)(h * (S)scale + (S)bias)",
                                   "macrobatch_layernorm_forward")
    gradSumsKernel = ReductionKernel("T g, T scale, T xhat", "S s", "(S)g * (S)scale * (S)xhat", "a + b", "s = a", "0",
                                     "macrobatch_layernorm_gradsums")
    backwardKernel = ElementwiseKernel("T g, T scale, T xhat, S dmean, S dxmean, S invstd", "T dx",
                                       "dx = (T)(invstd * ((S)g * (S)scale - dmean - (S)xhat * dxmean))",
                                       "macrobatch_layernorm_backward")

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

    @staticmethod
    def groupSums(kernel, *views):
        """CUDA: the reduction kernel over the (P, B) axes of (A, G, P, B) views, in statDtype, (A, G, 1, 1)."""
        out = xp.empty(views[0].shape[:2] + (1, 1), dtype=statDtype(views[0].dtype))
        return kernel(*views, axis=(2, 3), keepdims=True, out=out)

    def updateData(self, data):
        a, g, p, b = layout = self.groups(data.shape)
        scale, bias = self.paramViews(layout, data.dtype)
        dtype = statDtype(data.dtype)
        if isCuda:
            view = data.reshape(layout)
            mean = view.mean(axis=(2, 3), keepdims=True, dtype=dtype)
            var = self.groupSums(self.squaredDeviationKernel, view, mean) / (p * b)
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
        xp.subtract(rows, rows.sum(axis=1, keepdims=True, dtype=dtype) / (p * b), out=xhat)
        var = xp.einsum("ij,ij->i", xhat, xhat, dtype=dtype) / (p * b)
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
            dmean = self.groupSums(self.gradSumsKernel, view, scale, ones) / (p * b)
            dxmean = self.groupSums(self.gradSumsKernel, view, scale, self.xhat) / (p * b)
            return self.backwardKernel(view, scale, self.xhat, dmean, dxmean, self.invstd).reshape(grad.shape)
        dtype = statDtype(grad.dtype)
        d = (view * scale if self.affine else view).reshape(a * g, p * b)
        xhat = self.xhat.reshape(d.shape)
        dmean = d.sum(axis=1, keepdims=True, dtype=dtype) / (p * b)
        dxmean = xp.einsum("ij,ij->i", d, xhat, dtype=dtype).reshape(-1, 1) / (p * b)
        dx = xp.multiply(xhat, -dxmean, out=xp.empty_like(d))
        dx += d
        dx -= dmean
        dx *= self.invstd.reshape(-1, 1)
        return dx.reshape(grad.shape)

    def accGradParams(self, grad):
        view, dtype = grad.reshape(self.xhat.shape), statDtype(grad.dtype)
        self.vars["scale"].accumulate(xp.einsum("agpb,agpb->gp", view, self.xhat, dtype=dtype))
        self.vars["bias"].accumulate(xp.einsum("agpb->gp", view, dtype=dtype))

    def perSampleGrads(self, grad):
        """Each sample's scale and bias gradients (batch, *normalizedShape): the sums of accGradParams taken
        per sample (a sample is A / batch rows of the (A, G, P, B) view: its leading axes beyond the batch)."""
        batch, dtype = grad.shape[0], statDtype(grad.dtype)
        shape = (batch, -1) + self.xhat.shape[1:]
        view, xhat = grad.reshape(shape), self.xhat.reshape(shape)
        scale = xp.einsum("nagpb,nagpb->ngp", view, xhat, dtype=dtype)
        bias = xp.einsum("nagpb->ngp", view, dtype=dtype)
        return {name: sums.astype(grad.dtype, copy=False).reshape((batch,) + self.vars[name].shape)
                for name, sums in (("scale", scale), ("bias", bias))}
