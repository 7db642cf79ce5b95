"""Conv2D: 2D convolution (cross-correlation, like PyTorch) on NCHW images, as im2col and one GEMM."""
from ..engine.backend import isCuda, xp
from ..engine.dtype import defaultDtype
from ..engine.im2col import buffer, checkImageShape, col2im, im2col, outSize, pair
from ..engine.init import initWeights
from ..engine.variable import Variable
from .module import Module


class Conv2D(Module):
    """Convolution of (batch, inmaps, H, W) inputs to (batch, outmaps, OH, OW) outputs.

    W has shape (outmaps, inmaps, fh, fw) and b (outmaps,), as in PyTorch. size, stride and pad take
    an int or an (h, w) pair; pad adds that many zeros on each side. The input is lowered to a
    (inmaps*fh*fw, batch*OH*OW) column matrix so that forward, weight gradient and input gradient are
    one large GEMM each. The column matrix and the GEMM buffers are kept and reused between calls
    of the same shape. initscheme: 'he' (default), 'xavier' or 'uniform' (see engine.init), with
    fanIn = inmaps*fh*fw and fanOut = outmaps*fh*fw; useBias=False drops b.
    """

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, useBias=True, initscheme="he", name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.inmaps, self.outmaps = inmaps, outmaps
        self.size, self.stride, self.pad = pair(size, "size", 1), pair(stride, "stride", 1), pair(pad, "pad", 0)
        fh, fw = self.size
        shape = (outmaps, inmaps, fh, fw)
        self.vars["W"] = Variable(initWeights(shape, inmaps * fh * fw, outmaps * fh * fw, initscheme, defaultDtype))
        if useBias:
            self.vars["b"] = Variable(xp.zeros((outmaps,), dtype=defaultDtype))
        self.cols = None       # column matrix of the last input: the weight gradient needs it
        self.colGrad = None    # gradient of the column matrix, before col2im
        self.rows = None       # (outmaps, batch*OH*OW): the GEMM output, then the gradient in that layout
        self.rowsFrom = None   # the gradient array self.rows currently holds
        self.evalChunkBytes = 4 << 20  # column matrix size per chunk in eval mode (NumPy)

    def checkDataShape(self, shape):
        checkImageShape(shape, self.size, self.pad, self.describe(), maps=self.inmaps)

    def updateData(self, data):
        n = data.shape[0]
        oh, ow = outSize(data.shape[2:], self.size, self.stride, self.pad)
        out = xp.empty((n, self.outmaps, oh, ow), dtype=data.dtype)
        W = self.vars["W"].data.reshape(self.outmaps, -1)
        # Train mode lowers the whole batch at once: backward needs its column matrix. Eval mode keeps
        # nothing, so on NumPy it lowers a few samples at a time and the column matrix stays in cache.
        colBytes = W.shape[1] * oh * ow * data.dtype.itemsize
        step = n if self.train or isCuda else max(1, self.evalChunkBytes // colBytes)
        for start in range(0, n, step):
            part = data[start:start + step]
            self.cols = im2col(part, self.size, self.stride, self.pad, out=self.cols)
            self.rows = xp.matmul(W, self.cols, out=buffer(self.rows, (self.outmaps, self.cols.shape[1]), data.dtype))
            # the GEMM gives (outmaps, batch, ..): one pass transposes it to NCHW and adds the bias
            rows = self.rows.reshape(self.outmaps, part.shape[0], oh, ow).transpose(1, 0, 2, 3)
            if "b" in self.vars:
                xp.add(rows, self.vars["b"].data.reshape(1, -1, 1, 1), out=out[start:start + step])
            else:
                xp.copyto(out[start:start + step], rows)
        self.rowsFrom = None
        return out

    def backward(self, grad, updGrad=True, updParamGrads=True):
        self.rowsFrom = None  # a new backward pass: rebuild the gradient rows even from a reused array
        return super().backward(grad, updGrad, updParamGrads)

    def gradRows(self, grad):
        """grad (batch, outmaps, OH, OW) as an (outmaps, batch*OH*OW) matrix, transposed once per backward."""
        if self.rowsFrom is not grad:
            n = grad.shape[0]
            self.rows = buffer(self.rows, (self.outmaps, grad.size // self.outmaps), grad.dtype)
            xp.copyto(self.rows.reshape(self.outmaps, n, -1), grad.reshape(n, self.outmaps, -1).transpose(1, 0, 2))
            self.rowsFrom = grad
        return self.rows

    def updateGrad(self, grad):
        W = self.vars["W"].data.reshape(self.outmaps, -1)
        self.colGrad = xp.matmul(W.T, self.gradRows(grad), out=buffer(self.colGrad, self.cols.shape, grad.dtype))
        return col2im(self.colGrad, self.inData.shape, self.size, self.stride, self.pad)

    def accGradParams(self, grad):
        rows = self.gradRows(grad)
        self.vars["W"].accumulateMatmul(rows, self.cols.T)
        if "b" in self.vars:
            self.vars["b"].accumulateSum(rows, axis=1)
