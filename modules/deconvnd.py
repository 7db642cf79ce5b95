"""DeconvND: N-d transposed convolution, the adjoint of ConvND's input gradient; Deconv1D, Deconv2D and
Deconv3D set its number of spatial dims."""
from ..engine.backend import xp
from ..engine.errors import ShapeError
from ..engine.im2col import buffer, checkImageShape, col2im, im2col, ntuple
from .convnd import ConvND


class DeconvND(ConvND):
    """Transposed convolution of (batch, inmaps, *S) inputs to (batch, outmaps, *O) outputs, with
    O = (S-1)*stride - 2*pad + dilation*(size-1) + 1 + outPad, like PyTorch's ConvTranspose.

    Arguments as ConvND, plus outPad (an int or one per spatial dim, each smaller than its stride or its
    dilation, whichever is larger, as torch's output_padding): extra output elements on the far side, to
    reach every size a strided convolution maps back to the same S.
    W has shape (inmaps, outmaps/groups, *size) and b (outmaps,). The forward pass is the input gradient
    of a convolution from O to S: one GEMM W^T @ x to a column matrix, then col2im onto the output. The
    backward pass lowers the gradient with im2col once; the input gradient and the weight gradient are
    then one GEMM each.
    """

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, outPad=0, useBias=True,
                 initscheme="he", name=None):
        super().__init__(inmaps, outmaps, size, stride, pad, dilation, groups, useBias, initscheme, name)
        self.registerBlueprint(locals())
        self.outPad = ntuple(outPad, "outPad", 0, self.nd)
        if any(op >= max(s, d) for op, s, d in zip(self.outPad, self.stride, self.dilation)):
            raise ValueError(f"{self.describe()}: outPad must be smaller than stride {self.stride} or dilation "
                             f"{self.dilation} (the larger of the two, per axis), got {self.outPad}")
        self.inRows = None  # the last input as an (inmaps, batch*S) matrix: the weight gradient needs it

    def fusedWith(self, after):
        """None: a transposed convolution keeps its output maps on W's axis 1, so nothing is folded into it."""
        return None

    def weightShape(self):
        return (self.inmaps, self.outmaps // self.groups) + self.size

    def outputSize(self, insize):
        return tuple((n - 1) * s - 2 * p + d * (k - 1) + 1 + op for n, k, s, p, d, op in
                     zip(insize, self.size, self.stride, self.pad, self.dilation, self.outPad))

    def checkDataShape(self, shape):
        checkImageShape(shape, (1,) * self.nd, (0,) * self.nd, self.describe(), maps=self.inmaps)
        outsize = self.outputSize(shape[2:])
        if min(outsize) < 1:
            raise ShapeError(f"{self.describe()}: input of shape {tuple(shape)} gives an empty output of size "
                             f"{outsize}; each output size must be at least 1")

    def updateData(self, data):
        self.inRows = self.toRows(data, self.inRows)
        W = self.groupedWeight().swapaxes(-1, -2)
        self.cols = self.groupMatmul(W, self.grouped(self.inRows),
                                     buffer(self.cols, (W.shape[-2] * self.groups, self.inRows.shape[1]), data.dtype))
        self.gradFrom = None  # the cols buffer now holds the forward product, no longer a lowered gradient
        out = col2im(self.cols, (data.shape[0], self.outmaps) + self.outputSize(data.shape[2:]), *self.geometry(),
                     outsize=data.shape[2:])
        if "b" in self.vars:
            out += self.vars["b"].data.reshape((1, -1) + (1,) * self.nd)
        return out

    def lowerGradOnce(self, grad):
        """grad (batch, outmaps, *O) lowered to its (outmaps*K, batch*S) column matrix."""
        self.cols = im2col(grad, *self.geometry(), out=self.cols, outsize=self.inData.shape[2:])
        return self.cols

    def updateGrad(self, grad):
        cols = self.lowerGrad(grad)
        self.rows = self.groupMatmul(self.groupedWeight(), self.grouped(cols),
                                     buffer(self.rows, (self.inmaps, cols.shape[1]), grad.dtype))
        return self.fromRows(self.rows, xp.empty(self.inData.shape, dtype=grad.dtype))

    def accGradParams(self, grad):
        cols = self.lowerGrad(grad)
        self.accumulateWeightGrad(self.grouped(self.inRows), self.grouped(cols).swapaxes(-1, -2))
        if "b" in self.vars:
            self.vars["b"].accumulateSum(grad, axis=(0,) + tuple(range(2, 2 + self.nd)))

    def sampleFactors(self, grad):
        """(a, b) of the weight gradient as ConvND's: here the input's rows and the lowered gradient."""
        batch = grad.shape[0]
        return self.bySample(self.inRows, batch), self.bySample(self.lowerGrad(grad), batch)
