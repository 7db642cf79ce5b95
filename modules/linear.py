"""Linear: y = x W + b."""
from ..engine.backend import xp
from ..engine.dtype import defaultDtype
from ..engine.gemm import matmul
from ..engine.init import initWeights
from ..engine.persample import outerSumNormsSquared, outerSums, rowNormsSquared
from ..engine.variable import Variable
from ..engine.errors import ShapeError
from .module import Module


class Linear(Module):
    """Fully connected layer on (batch, insize) inputs.

    W has shape (insize, outsize) and b (outsize,), so the forward pass is one GEMM x @ W.
    initscheme: 'he' (default), 'xavier' or 'uniform' (see engine.init); useBias=False drops b.
    """

    def __init__(self, insize, outsize, useBias=True, initscheme="he", name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.insize, self.outsize = insize, outsize
        self.vars["W"] = Variable(initWeights((insize, outsize), insize, outsize, initscheme, defaultDtype))
        if useBias:
            self.vars["b"] = Variable(xp.zeros((outsize,), dtype=defaultDtype))

    def checkDataShape(self, shape):
        if len(shape) != 2 or shape[1] != self.insize:
            raise ShapeError(f"{self.describe()}: expected input of shape (batch, {self.insize}), got {tuple(shape)}")

    def updateData(self, data):
        out = matmul(data, self.vars["W"].data)
        if "b" in self.vars:
            out += self.vars["b"].data
        return out

    def updateGrad(self, grad):
        return matmul(grad, self.vars["W"].data.T)

    def accGradParams(self, grad):
        self.vars["W"].accumulateMatmul(self.inData.T, grad)
        if "b" in self.vars:
            self.vars["b"].accumulateSum(grad, axis=0)

    def perSampleGrads(self, grad):
        """Each sample's W gradient x_i g_i^T (batch, insize, outsize) and b gradient g_i (batch, outsize)."""
        grads = {"W": outerSums(*self.sampleFactors(grad))}
        if "b" in self.vars:
            grads["b"] = grad.copy()
        return grads

    def perSampleNormsSquared(self, grad):
        """||x_i||^2 ||g_i||^2 (+ ||g_i||^2 for b), without forming the per-sample gradients (ghost norm)."""
        norms = outerSumNormsSquared(*self.sampleFactors(grad))
        if "b" in self.vars:
            norms += rowNormsSquared(grad)
        return norms

    def sampleFactors(self, grad):
        """x and g as (batch, 1, size): each sample's W gradient is their outer product, one position each."""
        return self.inData[:, None, :], grad[:, None, :]
