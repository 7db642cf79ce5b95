"""PRelu: leaky ReLU whose negative slopes are learned."""
from ..engine.backend import isCuda, xp
from ..engine.checks import checkPositiveInt
from ..engine.dtype import defaultDtype, statDtype
from ..engine.errors import ShapeError
from ..engine.im2col import buffer
from ..engine.kernels import ElementwiseKernel
from ..engine.variable import Variable
from .activation import activations
from .module import Module


class PRelu(Module):
    """x for x > 0, else a * x, on (batch, maps, ...) inputs, as torch's PReLU.

    The slope a is learned per map (axis 1), a Variable "slopes" of shape (maps,); sharedAlpha=True
    learns one slope for every map instead (shape (1,), torch's num_parameters=1). init is the
    starting slope. The forward and input gradient are leakyRelu's, with the slopes broadcast.
    """

    negativePartKernel = ElementwiseKernel("T g, T x", "T p", "p = x > (T)0 ? (T)0 : (T)(g * x)",
                                           "macrobatch_prelu_negative_part")

    def __init__(self, maps, init=0.25, sharedAlpha=False, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.maps = checkPositiveInt(maps, "maps")
        self.sharedAlpha = bool(sharedAlpha)
        self.vars["slopes"] = Variable(xp.full((1 if self.sharedAlpha else self.maps,), init, dtype=defaultDtype))
        self.leaky = activations["leakyRelu"]
        self.negativePart = None  # grad * x where x <= 0, kept between calls of the same shape

    def checkDataShape(self, shape):
        if len(shape) < 2 or shape[1] != self.maps:
            raise ShapeError(f"{self.describe()}: expected input of shape (batch, {self.maps}, ...), "
                             f"got {tuple(shape)}")

    def slopes(self, ndim):
        """The slopes shaped to broadcast along axis 1 of an ndim-dimensional input."""
        return self.vars["slopes"].data.reshape((1, -1) + (1,) * (ndim - 2))

    def updateData(self, data):
        if isCuda:
            return self.leaky.cudaForward(data, self.slopes(data.ndim))
        return self.leaky.forward(data, xp.empty_like(data), self.slopes(data.ndim))

    def updateGrad(self, grad):
        if isCuda:
            return self.leaky.cudaBackward(grad, self.inData, self.slopes(grad.ndim))
        return self.leaky.backward(grad, self.inData, self.slopes(grad.ndim))

    def accGradParams(self, grad):
        self.vars["slopes"].accumulateSum(self.negativeProducts(grad), axis=(0, 2))

    def perSampleGrads(self, grad):
        """Each sample's slopes gradient (batch, slopes): its terms summed over its own positions."""
        sums = self.negativeProducts(grad).sum(axis=2, dtype=statDtype(grad.dtype))
        return {"slopes": sums.astype(grad.dtype, copy=False)}

    def negativeProducts(self, grad):
        """The terms of d loss / d a, grad * x where x <= 0 (else 0), as (batch, slopes, positions): summed over
        positions per map, or over everything when shared."""
        part = self.negativePart = buffer(self.negativePart, grad.shape, grad.dtype)
        if isCuda:
            self.negativePartKernel(grad, self.inData, part)
        else:
            xp.multiply(grad, self.inData, out=part)
            xp.copyto(part, 0, where=self.inData > 0)
        return part.reshape(grad.shape[0], self.vars["slopes"].size, -1)
