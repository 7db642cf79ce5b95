"""ConvND: N-d convolution (cross-correlation, like PyTorch) as im2col and one GEMM; Conv1D, Conv2D and
Conv3D set its number of spatial dims, and DeconvND reuses its geometry, weights and GEMM layout."""
import math

from ..engine.backend import isCuda, xp
from ..engine.checks import checkPositiveInt
from ..engine.dtype import defaultDtype, statDtype
from ..engine.gemm import matmul
from ..engine.im2col import buffer, checkImageShape, col2im, im2col, ntuple, outSize
from ..engine.init import initWeights
from ..engine.persample import outerSumNormsSquared, outerSums, rowNormsSquared
from ..engine.variable import Variable
from .module import Module


class ConvND(Module):
    """Convolution of (batch, inmaps, *S) inputs to (batch, outmaps, *O) outputs over nd spatial dims
    (a subclass sets nd).

    size, stride, pad and dilation take an int or one int per spatial dim; pad adds that many zeros on
    each side, dilation spaces the kernel taps. groups splits the channels into that many independent
    convolutions (inmaps and outmaps divisible by it; groups == inmaps is a depthwise convolution).
    W has shape weightShape() ((outmaps, inmaps/groups, *size) here) and b (outmaps,), as in PyTorch.
    The input is lowered to a (inmaps*K, batch*O) column matrix (K = prod(size)) so that forward, weight
    gradient and input gradient are one GEMM each (one batched GEMM over the groups). The column matrix
    and the GEMM buffers are kept and reused between calls of the same shape. A backward pass after an
    eval-mode forward (saliency maps, input gradients of a frozen net) works too: the weight gradient
    lowers the input again when eval mode kept only a chunk of it. initscheme: 'he'
    (default), 'xavier' or 'uniform' (see engine.init), with PyTorch's fans: fanIn = W.shape[1]*K,
    fanOut = W.shape[0]*K; useBias=False drops b.
    """

    nd = None

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True, initscheme="he",
                 name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.size, self.stride = ntuple(size, "size", 1, self.nd), ntuple(stride, "stride", 1, self.nd)
        self.pad, self.dilation = ntuple(pad, "pad", 0, self.nd), ntuple(dilation, "dilation", 1, self.nd)
        groups = checkPositiveInt(groups, "groups")
        if inmaps % groups or outmaps % groups:
            raise ValueError(f"{self.describe()}: inmaps and outmaps must be divisible by groups={groups}, "
                             f"got inmaps={inmaps}, outmaps={outmaps}")
        self.inmaps, self.outmaps, self.groups = inmaps, outmaps, groups
        shape = self.weightShape()
        k = math.prod(self.size)
        self.vars["W"] = Variable(initWeights(shape, shape[1] * k, shape[0] * k, initscheme, defaultDtype))
        if useBias:
            self.vars["b"] = Variable(xp.zeros((outmaps,), dtype=defaultDtype))
        self.cols = None      # column matrix of the last input: the weight gradient needs it
        self.colsWhole = False  # whether cols is the whole last input's, not an eval chunk's
        self.colGrad = None   # gradient of the column matrix, before col2im
        self.rows = None      # (outmaps, batch*O): the GEMM output, then the gradient in that layout
        self.gradFrom = None  # the gradient array the lowered gradient was made from in this backward pass
        self.gradLowered = None
        self.evalChunkBytes = 4 << 20  # column matrix size per chunk in eval mode (NumPy)

    def weightShape(self):
        return (self.outmaps, self.inmaps // self.groups) + self.size

    def outputSize(self, insize):
        """The spatial output sizes for spatial input sizes insize."""
        return outSize(insize, *self.geometry())

    def geometry(self):
        """(size, stride, pad, dilation): the arguments of im2col and col2im."""
        return self.size, self.stride, self.pad, self.dilation

    def checkDataShape(self, shape):
        checkImageShape(shape, self.size, self.pad, self.describe(), maps=self.inmaps, dilation=self.dilation)

    # --- layout helpers shared with DeconvND ----------------------------------------------

    def grouped(self, ary):
        """ary (rows, cols) as (groups, rows/groups, cols), so one batched matmul runs the GEMM of every
        group; ary itself for one group (the plain GEMM)."""
        return ary if self.groups == 1 else ary.reshape(self.groups, -1, ary.shape[-1])

    def groupedWeight(self):
        """W as the grouped (groups, W.shape[0]/groups, W.shape[1]*K) matrix of the GEMMs."""
        W = self.vars["W"].data
        return self.grouped(W.reshape(W.shape[0], -1))

    def groupMatmul(self, a, b, out):
        """out (rows, cols) = a @ b group by group, a and b grouped (see grouped); returns out."""
        matmul(a, b, out=self.grouped(out))
        return out

    def accumulateWeightGrad(self, a, b):
        """W.grad += a @ b group by group, a and b grouped."""
        if self.groups == 1:
            self.vars["W"].accumulateMatmul(a, b)
        else:
            self.vars["W"].accumulate(matmul(a, b))

    @staticmethod
    def toRows(ary, out):
        """ary (batch, maps, *S) as a (maps, batch*S) matrix, copied into out when it fits (a kept buffer)."""
        n, maps = ary.shape[:2]
        out = buffer(out, (maps, ary.size // maps), ary.dtype)
        xp.copyto(out.reshape(maps, n, -1), ary.reshape(n, maps, -1).swapaxes(0, 1))
        return out

    def fromRows(self, rows, out, bias=None):
        """out (batch, maps, *S) = rows (maps, batch*S) transposed, plus bias (maps,) when given, in one pass."""
        view = rows.reshape((out.shape[1], out.shape[0]) + out.shape[2:]).swapaxes(0, 1)
        if bias is None:
            xp.copyto(out, view)
        else:
            xp.add(view, bias.reshape((1, -1) + (1,) * self.nd), out=out)
        return out

    def bias(self):
        return self.vars["b"].data if "b" in self.vars else None

    def backward(self, grad, updGrad=True, updParamGrads=True):
        self.gradFrom = None  # a new backward pass: lower the gradient again even from a reused array
        return super().backward(grad, updGrad, updParamGrads)

    def lowerGrad(self, grad):
        """The GEMM operand made from grad (lowerGradOnce), once per backward pass for both gradients."""
        if self.gradFrom is not grad:
            self.gradLowered = self.lowerGradOnce(grad)
            self.gradFrom = grad
        return self.gradLowered

    # --- convolution ----------------------------------------------------------------------

    def updateData(self, data):
        n = data.shape[0]
        outsize = self.outputSize(data.shape[2:])
        out = xp.empty((n, self.outmaps) + outsize, dtype=data.dtype)
        W = self.groupedWeight()
        # Train mode lowers the whole batch at once: backward needs its column matrix. Eval mode rarely
        # needs one, so on NumPy it lowers a few samples at a time and the column matrix stays in cache.
        colBytes = self.inmaps * math.prod(self.size) * math.prod(outsize) * data.dtype.itemsize
        step = n if self.train or isCuda else max(1, self.evalChunkBytes // colBytes)
        for start in range(0, n, step):
            part = data[start:start + step]
            self.cols = im2col(part, *self.geometry(), out=self.cols)
            self.rows = self.groupMatmul(W, self.grouped(self.cols),
                                         buffer(self.rows, (self.outmaps, self.cols.shape[1]), data.dtype))
            self.fromRows(self.rows, out[start:start + step], self.bias())
        self.colsWhole = step >= n
        self.gradFrom = None  # the rows buffer now holds the output, no longer a lowered gradient
        return out

    def lowerGradOnce(self, grad):
        """grad (batch, outmaps, *O) as the (outmaps, batch*O) matrix of the GEMMs."""
        self.rows = self.toRows(grad, self.rows)
        return self.rows

    def inputCols(self):
        """The column matrix of the whole last input: the one forward kept, or lowered again after a
        chunked eval-mode forward, which kept only its last chunk's."""
        if not self.colsWhole:
            self.cols = im2col(self.inData, *self.geometry(), out=self.cols)
            self.colsWhole = True
        return self.cols

    def updateGrad(self, grad):
        W = self.groupedWeight().swapaxes(-1, -2)
        rows = self.lowerGrad(grad)
        shape = (W.shape[-2] * self.groups, rows.shape[1])
        self.colGrad = self.groupMatmul(W, self.grouped(rows), buffer(self.colGrad, shape, grad.dtype))
        return col2im(self.colGrad, self.inData.shape, *self.geometry())

    def accGradParams(self, grad):
        rows = self.lowerGrad(grad)
        self.accumulateWeightGrad(self.grouped(rows), self.grouped(self.inputCols()).swapaxes(-1, -2))
        if "b" in self.vars:
            self.vars["b"].accumulateSum(rows, axis=1)

    # --- per-sample gradients -------------------------------------------------------------

    def perSampleGrads(self, grad):
        """Each sample's W gradient (batch, *W.shape), one batched GEMM over samples and groups of the
        lowered matrices the batch gradient multiplies, and b gradient (batch, outmaps)."""
        grads = {"W": outerSums(*self.sampleFactors(grad)).reshape((grad.shape[0],) + self.vars["W"].shape)}
        if "b" in self.vars:
            grads["b"] = self.sampleBiasGrads(grad)
        return grads

    def perSampleNormsSquared(self, grad):
        """Each sample's squared gradient norm from the Gram matrices of its lowered columns and gradient
        (sum over output positions p, q of their products) where those are smaller than its W gradient."""
        norms = outerSumNormsSquared(*self.sampleFactors(grad))
        if "b" in self.vars:
            norms += rowNormsSquared(self.sampleBiasGrads(grad))
        return norms

    def sampleFactors(self, grad):
        """(a, b) of the weight gradient W_g += a_g b_g^T as (batch, groups, positions, rows/groups) views:
        here the lowered gradient and the input's column matrix."""
        return self.bySample(self.lowerGrad(grad), grad.shape[0]), self.bySample(self.inputCols(), grad.shape[0])

    def bySample(self, lowered, batch):
        """A lowered (rows, batch*positions) matrix as its (batch, groups, positions, rows/groups) view."""
        return lowered.reshape(self.groups, lowered.shape[0] // self.groups, batch, -1).transpose(2, 0, 3, 1)

    @staticmethod
    def sampleBiasGrads(grad):
        """Each sample's b gradient: its output gradient summed over positions, (batch, outmaps)."""
        sums = grad.reshape(grad.shape[0], grad.shape[1], -1).sum(axis=2, dtype=statDtype(grad.dtype))
        return sums.astype(grad.dtype, copy=False)
