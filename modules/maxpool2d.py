"""MaxPool2D: the maximum of each window of an NCHW image."""
import numpy

from ..engine.backend import isCuda, xp
from ..engine.im2col import buffer, coverPreamble, cropImage, offsetViews, outSize, padImage
from ..engine.kernels import ElementwiseKernel
from .pool2d import Pool2D


class MaxPool2D(Pool2D):
    """Max pooling of (batch, maps, H, W) inputs to (batch, maps, OH, OW).

    size, stride and pad take an int or an (h, w) pair; stride defaults to size (windows side by side)
    and pad (at most half the window) adds -inf borders, so padding never wins the max. The forward
    pass in train mode keeps, for each output, the row-major position of its maximum in the window (the
    first one on ties, as PyTorch does); backward routes each output gradient to that pixel. Eval mode
    keeps no positions (a backward then finds them again from the input).
    """

    forwardKernel = ElementwiseKernel(
        "raw T x, int32 H, int32 W, int32 OH, int32 OW, int32 fh, int32 fw, int32 sh, int32 sw, "
        "int32 ph, int32 pw",
        "T y, S idx",
        """
        int ow = i % OW; ptrdiff_t rest = i / OW;
        int oh = rest % OH;
        ptrdiff_t plane = rest / OH * H * W;
        int y0 = oh * sh - ph, x0 = ow * sw - pw;
        int rLo = max(y0, 0), rHi = min(y0 + fh, H), cLo = max(x0, 0), cHi = min(x0 + fw, W);
        T best = x[plane + rLo * W + cLo];
        int bestK = (rLo - y0) * fw + cLo - x0;
        for (int r = rLo; r < rHi; ++r) {
            for (int c = cLo; c < cHi; ++c) {
                T v = x[plane + r * W + c];
                if (v > best) { best = v; bestK = (r - y0) * fw + c - x0; }
            }
        }
        y = best;
        idx = bestK;
        """,
        "macrobatch_maxpool2d")

    backwardKernel = ElementwiseKernel(
        "raw T gy, raw S idx, int32 H, int32 W, int32 OH, int32 OW, int32 fh, int32 fw, int32 sh, int32 sw, "
        "int32 ph, int32 pw",
        "T gx",
        """
        int x0 = i % W + pw; ptrdiff_t rest = i / W;
        int y = rest % H + ph;
        ptrdiff_t plane = rest / H * OH * OW;
        int ohLo, ohHi, owLo, owHi;
        coverRange(y, fh, sh, OH, &ohLo, &ohHi);
        coverRange(x0, fw, sw, OW, &owLo, &owHi);
        T acc = (T)0;
        for (int oh = ohLo; oh <= ohHi; ++oh) {
            for (int ow = owLo; ow <= owHi; ++ow) {
                ptrdiff_t o = plane + oh * OW + ow;
                if (idx[o] == (y - oh * sh) * fw + x0 - ow * sw) acc += gy[o];
            }
        }
        gx = acc;
        """,
        "macrobatch_maxpool2d_grad", preamble=coverPreamble)

    def __init__(self, size=2, stride=None, pad=0, name=None):
        super().__init__(size, stride, pad, name)
        # the position of the max in its window fits a byte for all but huge windows
        self.indexDtype = numpy.dtype(numpy.uint8 if self.size[0] * self.size[1] <= 256 else numpy.int32)
        self.idx = None

    def updateData(self, data):
        n, c, h, w = data.shape
        out = xp.empty((n, c) + outSize((h, w), self.size, self.stride, self.pad), dtype=data.dtype)
        if not self.train:  # inference keeps no indices nor buffers; a backward in eval mode finds them again
            self.buffers = {}
        self.idx = self.findMax(data, out, self.train)
        return out

    def findMax(self, data, out, withIndex):
        """Write the maximum of each window of data into out; with withIndex, return the row-major
        position of the first maximum in each window, else None."""
        n, c, h, w = data.shape
        if isCuda:
            idx = xp.empty(out.shape, dtype=self.indexDtype)
            self.forwardKernel(xp.ascontiguousarray(data), h, w, *out.shape[2:], *self.size, *self.stride, *self.pad,
                               out, idx)
            return idx if withIndex else None
        views = offsetViews(padImage(data, self.pad, -numpy.inf), self.size, self.stride, out.shape[2:])
        if not withIndex:
            self.splitBatch(self.foldMax, views, out)
            return None
        idx = buffer(self.idx, out.shape, self.indexDtype)
        self.splitBatch(self.foldMaxIndex, views, out, idx, self.scratch("view", out.shape, out.dtype),
                        self.scratch("beats", out.shape, bool), self.scratch("candidate", out.shape, self.indexDtype))
        return idx

    def updateGrad(self, grad):
        n, c, h, w = self.inData.shape
        (ph, pw), outsize = self.pad, grad.shape[2:]
        idx = self.idx if self.idx is not None else self.findMax(self.inData, xp.empty(grad.shape, grad.dtype), True)
        if isCuda:
            out = xp.empty(self.inData.shape, dtype=grad.dtype)
            self.backwardKernel(xp.ascontiguousarray(grad), idx, h, w, *outsize, *self.size, *self.stride,
                                ph, pw, out)
            return out
        image = (xp.empty if self.tiles((h, w)) else xp.zeros)((n, c, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)
        views = offsetViews(image, self.size, self.stride, outsize)
        routed = self.scratch("beats", grad.shape, bool)
        if self.overlap:
            self.splitBatch(self.addRouted, views, grad, idx, routed, self.scratch("view", grad.shape, grad.dtype))
        else:
            self.splitBatch(self.writeRouted, views, grad, idx, routed)
        return cropImage(image, self.pad)

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
        grows with the offset, max(idx, k * beats) does it."""
        xp.copyto(out, views[0])
        idx.fill(0)
        for k, view in enumerate(views[1:], start=1):
            xp.copyto(copy, view)
            xp.greater(copy, out, out=beats)
            xp.maximum(out, copy, out=out)
            xp.multiply(beats, idx.dtype.type(k), out=candidate)
            xp.maximum(idx, candidate, out=idx)

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
