"""MaxPoolND: the maximum of each window, on any number of spatial axes (MaxPool1D, 2D and 3D)."""
import numpy

from ..engine.backend import isCuda, xp
from ..engine.im2col import buffer, offsetViews
from ..engine.kernels import ElementwiseKernel
from .poolnd import PoolND, cropSpatial, geometryParams, padSpatial, windowPreamble


class MaxPoolND(PoolND):
    """Max pooling of (batch, maps, *spatial) inputs to (batch, maps, *outsize).

    pad (at most half the window) and ceilMode's reach beyond it read as -inf, so padding never wins
    the max. dilation spaces the taps of a window (torch's dilation): a window of size k spans
    dilation * (k - 1) + 1 elements. The forward pass in train mode keeps, for each output, the row-major
    position of its maximum among the window's taps (the first one on ties, as PyTorch does); backward
    routes each output gradient to that element. Eval mode keeps no positions (a backward then finds them
    again from the input).

    NaN is never made finite, on either backend: a NaN wins its window (the last one, as in PyTorch, so the
    gradient goes to it), and the gradient is routed by multiplying with a 0/1 mask, so a NaN gradient
    reaches every input of its window instead of being dropped.
    """

    forwardKernel = ElementwiseKernel(
        "raw T x, " + geometryParams, "T y, S idx",
        """
        Window w = windowOf(i, GEOMETRY);
        T best = x[w.plane + ((ptrdiff_t)(w.z0 + w.jdLo * ld) * H + w.y0 + w.jhLo * lh) * W + w.x0 + w.jwLo * lw];
        int bestK = (w.jdLo * fh + w.jhLo) * fw + w.jwLo;
        FOR_WINDOW(w) {
            T v = x[w.plane + ((ptrdiff_t)d * H + r) * W + c];
            if (v > best || isnan(v)) { best = v; bestK = (jd * fh + jh) * fw + jw; }
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
            int td = v.z - od * sd, th = v.y - oh * sh, tw = v.x - ow * sw;
            if (td % ld || th % lh || tw % lw) continue;  // in a gap between the taps of this window
            ptrdiff_t o = v.plane + ((ptrdiff_t)od * OH + oh) * OW + ow;
            acc += gy[o] * (T)(idx[o] == (td / ld * fh + th / lh) * fw + tw / lw);
        }
        gx = acc;
        """,
        "macrobatch_maxpool_grad", preamble=windowPreamble)

    def __init__(self, size=2, stride=None, pad=0, dilation=1, ceilMode=False, name=None):
        super().__init__(size, stride, pad, dilation, ceilMode, name)
        self.registerBlueprint(locals())
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
        padded = padSpatial(data, self.pad, self.paddedSize(data.shape[2:]), -numpy.inf)
        views = offsetViews(padded, self.size, self.stride, out.shape[2:], self.dilation)
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
        views = offsetViews(image, self.size, self.stride, grad.shape[2:], self.dilation)
        routed = self.scratch("beats", grad.shape, bool)
        if self.overlap:
            self.splitBatch(self.addRouted, views, grad, idx, routed, self.scratch("view", grad.shape, grad.dtype))
        else:
            self.splitBatch(self.writeRouted, views, grad, idx, routed)
        return cropSpatial(image, self.pad, inShape[2:])

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
