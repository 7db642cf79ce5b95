"""MaxPoolND: the maximum of each window, on any number of spatial axes (MaxPool1D, 2D and 3D)."""
import numpy

from ..engine.backend import isCuda, xp
from ..engine.im2col import buffer, offsetViews
from ..engine.kernels import ElementwiseKernel
from .poolnd import PoolND, cropSpatial, geometryParams, padSpatial, windowPreamble


class MaxPoolND(PoolND):
    """Max pooling of (batch, maps, *spatial) inputs to (batch, maps, *outsize).

    pad (at most half the window) adds -inf borders, so padding never wins the max. The forward pass in
    train mode keeps, for each output, the row-major position of its maximum in the window (the first
    one on ties, as PyTorch does); backward routes each output gradient to that element. Eval mode keeps
    no positions (a backward then finds them again from the input).

    NaN is never made finite, on either backend: a NaN wins its window (the last one, as in PyTorch, so the
    gradient goes to it), and the gradient is routed by multiplying with a 0/1 mask, so a NaN gradient
    reaches every input of its window instead of being dropped.
    """

    forwardKernel = ElementwiseKernel(
        "raw T x, " + geometryParams, "T y, S idx",
        """
        Window w = windowOf(i, GEOMETRY);
        T best = x[w.plane + ((ptrdiff_t)w.dLo * H + w.rLo) * W + w.cLo];
        int bestK = ((w.dLo - w.z0) * fh + w.rLo - w.y0) * fw + w.cLo - w.x0;
        FOR_WINDOW(w) {
            T v = x[w.plane + ((ptrdiff_t)d * H + r) * W + c];
            if (v > best || isnan(v)) { best = v; bestK = ((d - w.z0) * fh + r - w.y0) * fw + c - w.x0; }
        }
        y = best;
        idx = bestK;
        """,
        "macrobatch_maxpool", preamble=windowPreamble)

    backwardKernel = ElementwiseKernel(
        "raw T gy, raw S idx, " + geometryParams, "T gx",
        """
        Cover v = coverOf(i, GEOMETRY);
        T acc = (T)0;
        FOR_COVER(v) {
            ptrdiff_t o = v.plane + ((ptrdiff_t)od * OH + oh) * OW + ow;
            acc += gy[o] * (T)(idx[o] == ((v.z - od * sd) * fh + v.y - oh * sh) * fw + v.x - ow * sw);
        }
        gx = acc;
        """,
        "macrobatch_maxpool_grad", preamble=windowPreamble)

    def __init__(self, size=2, stride=None, pad=0, name=None):
        super().__init__(size, stride, pad, name)
        # the position of the max in its window fits a byte for all but huge windows
        self.indexDtype = numpy.dtype(numpy.uint8 if self.windowCount() <= 256 else numpy.int32)
        self.idx = None

    def updateData(self, data):
        out = xp.empty(self.outShape(data.shape), dtype=data.dtype)
        if not self.train:  # inference keeps no indices nor buffers; a backward in eval mode finds them again
            self.buffers = {}
        self.idx = self.findMax(data, out, self.train)
        return out

    def findMax(self, data, out, withIndex):
        """Write the maximum of each window of data into out; with withIndex, return the row-major
        position of the first maximum in each window, else None."""
        if isCuda:
            idx = xp.empty(out.shape, dtype=self.indexDtype)
            self.forwardKernel(xp.ascontiguousarray(data), *self.kernelGeometry(data.shape, out.shape), out, idx)
            return idx if withIndex else None
        views = offsetViews(padSpatial(data, self.pad, -numpy.inf), self.size, self.stride, out.shape[2:])
        if not withIndex:
            self.splitBatch(self.foldMax, views, out)
            return None
        idx = buffer(self.idx, out.shape, self.indexDtype)
        self.splitBatch(self.foldMaxIndex, views, out, idx, self.scratch("view", out.shape, out.dtype),
                        self.scratch("beats", out.shape, bool), self.scratch("candidate", out.shape, self.indexDtype))
        return idx

    def updateGrad(self, grad):
        inShape = self.inData.shape
        idx = self.idx if self.idx is not None else self.findMax(self.inData, xp.empty(grad.shape, grad.dtype), True)
        if isCuda:
            out = xp.empty(inShape, dtype=grad.dtype)
            self.backwardKernel(xp.ascontiguousarray(grad), idx, *self.kernelGeometry(inShape, grad.shape), out)
            return out
        image = self.gradImage(inShape, grad.dtype)
        views = offsetViews(image, self.size, self.stride, grad.shape[2:])
        routed = self.scratch("beats", grad.shape, bool)
        if self.overlap:
            self.splitBatch(self.addRouted, views, grad, idx, routed, self.scratch("view", grad.shape, grad.dtype))
        else:
            self.splitBatch(self.writeRouted, views, grad, idx, routed)
        return cropSpatial(image, self.pad)

    # The CPU passes, each over a part of the batch: one elementwise pass per window offset (offsetViews).
    # A pass over a strided view costs several times one over a contiguous array, and copying the view
    # about one such pass, so the train forward copies each view once for its two passes.

    @staticmethod
    def foldMax(views, out):
        """out = the elementwise maximum of views."""
        if len(views) == 1:
            xp.copyto(out, views[0])
            return
        xp.maximum(views[0], views[1], out=out)
        for view in views[2:]:
            xp.maximum(out, view, out=out)

    @staticmethod
    def foldMaxIndex(views, out, idx, copy, beats, candidate):
        """out = the elementwise maximum of views and idx = the position in views of its first occurrence:
        an offset k that beats the running max (strictly, so ties keep the first) sets idx to k, and as k
        grows with the offset, max(idx, k * beats) does it. A window holding NaN takes its last NaN."""
        xp.copyto(out, views[0])
        idx.fill(0)
        for k, view in enumerate(views[1:], start=1):
            xp.copyto(copy, view)
            xp.greater(copy, out, out=beats)
            xp.maximum(out, copy, out=out)
            xp.multiply(beats, idx.dtype.type(k), out=candidate)
            xp.maximum(idx, candidate, out=idx)
        if xp.isnan(out).any():  # NaN beats nothing above, yet wins its window: its last one, as in PyTorch
            for k, view in enumerate(views):
                xp.copyto(idx, idx.dtype.type(k), where=xp.isnan(view))

    @staticmethod
    def writeRouted(views, grad, idx, routed):
        """Each view (windows that do not overlap) = grad where idx names its offset, else 0."""
        for k, view in enumerate(views):
            xp.equal(idx, k, out=routed)
            xp.multiply(grad, routed, out=view)

    @staticmethod
    def addRouted(views, grad, idx, routed, part):
        """Add to each view (overlapping windows) grad where idx names its offset."""
        for k, view in enumerate(views):
            xp.equal(idx, k, out=routed)
            xp.multiply(grad, routed, out=part)
            view += part
