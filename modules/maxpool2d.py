"""MaxPool2D: the maximum of each window of an NCHW image."""
import numpy

from ..engine.backend import isCuda, xp
from ..engine.im2col import coverPreamble, cropImage, offsetViews, outSize, padImage
from ..engine.kernels import ElementwiseKernel
from .pool2d import Pool2D


class MaxPool2D(Pool2D):
    """Max pooling of (batch, maps, H, W) inputs to (batch, maps, OH, OW).

    size, stride and pad take an int or an (h, w) pair; stride defaults to size (windows side by side)
    and pad (at most half the window) adds -inf borders, so padding never wins the max. The forward
    pass keeps, for each output, the row-major position of its maximum in the window (the first one
    on ties, as PyTorch does); backward routes each output gradient to that pixel.
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
        outsize = outSize((h, w), self.size, self.stride, self.pad)
        if isCuda:
            out = xp.empty((n, c) + outsize, dtype=data.dtype)
            self.idx = xp.empty(out.shape, dtype=self.indexDtype)
            self.forwardKernel(xp.ascontiguousarray(data), h, w, *outsize, *self.size, *self.stride, *self.pad,
                               out, self.idx)
            return out
        # one pass per window offset: the running max and, where an offset beats it, its index k;
        # k grows with the offset, so max(idx, k * beats) is the index of the first maximum
        views = offsetViews(padImage(data, self.pad, -numpy.inf), self.size, self.stride, outsize)
        out = views[0].copy()
        self.idx = xp.zeros(out.shape, dtype=self.indexDtype)
        beats, candidate = xp.empty(out.shape, dtype=bool), xp.empty(out.shape, dtype=self.indexDtype)
        for k, view in enumerate(views[1:], start=1):
            xp.greater(view, out, out=beats)
            xp.maximum(out, view, out=out)
            xp.multiply(beats, self.indexDtype.type(k), out=candidate)
            xp.maximum(self.idx, candidate, out=self.idx)
        return out

    def updateGrad(self, grad):
        n, c, h, w = self.inData.shape
        (ph, pw), outsize = self.pad, grad.shape[2:]
        if isCuda:
            out = xp.empty(self.inData.shape, dtype=grad.dtype)
            self.backwardKernel(xp.ascontiguousarray(grad), self.idx, h, w, *outsize, *self.size, *self.stride,
                                ph, pw, out)
            return out
        image = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)
        routed = xp.empty(grad.shape, dtype=bool)
        part = xp.empty(grad.shape, dtype=grad.dtype) if self.overlap else None
        for k, view in enumerate(offsetViews(image, self.size, self.stride, outsize)):
            xp.equal(self.idx, k, out=routed)
            if self.overlap:
                xp.multiply(grad, routed, out=part)
                view += part
            else:  # each pixel is in one window at most: write instead of add
                xp.multiply(grad, routed, out=view)
        return cropImage(image, self.pad)
