"""AvgPool2D: the mean of each window of an NCHW image."""
from ..engine.backend import isCuda, xp
from ..engine.im2col import coverPreamble, cropImage, offsetViews, outSize, padImage
from ..engine.kernels import ElementwiseKernel
from .pool2d import Pool2D


class AvgPool2D(Pool2D):
    """Average pooling of (batch, maps, H, W) inputs to (batch, maps, OH, OW).

    size, stride and pad take an int or an (h, w) pair; stride defaults to size (windows side by side)
    and pad (at most half the window) adds zero borders that count in the mean, so every window is
    divided by fh*fw (PyTorch's default, count_include_pad=True). On the CPU, a window covering the
    whole unpadded image (global average pooling) takes one matrix-vector product.
    """

    forwardKernel = ElementwiseKernel(
        "raw T x, int32 H, int32 W, int32 OH, int32 OW, int32 fh, int32 fw, int32 sh, int32 sw, "
        "int32 ph, int32 pw",
        "T y",
        """
        int ow = i % OW; ptrdiff_t rest = i / OW;
        int oh = rest % OH;
        ptrdiff_t plane = rest / OH * H * W;
        int y0 = oh * sh - ph, x0 = ow * sw - pw;
        int rLo = max(y0, 0), rHi = min(y0 + fh, H), cLo = max(x0, 0), cHi = min(x0 + fw, W);
        T acc = (T)0;
        for (int r = rLo; r < rHi; ++r) {
            for (int c = cLo; c < cHi; ++c) acc += x[plane + r * W + c];
        }
        y = acc / (T)(fh * fw);
        """,
        "macrobatch_avgpool2d")

    backwardKernel = ElementwiseKernel(
        "raw T gy, int32 H, int32 W, int32 OH, int32 OW, int32 fh, int32 fw, int32 sh, int32 sw, "
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
            for (int ow = owLo; ow <= owHi; ++ow) acc += gy[plane + oh * OW + ow];
        }
        gx = acc / (T)(fh * fw);
        """,
        "macrobatch_avgpool2d_grad", preamble=coverPreamble)

    def __init__(self, size=2, stride=None, pad=0, name=None):
        super().__init__(size, stride, pad, name)
        self.scale = 1.0 / (self.size[0] * self.size[1])

    def coversImage(self, insize):
        """Whether one unpadded window covers the whole (H, W) image: global average pooling."""
        return self.pad == (0, 0) and self.size == tuple(insize)

    def updateData(self, data):
        n, c, h, w = data.shape
        outsize = outSize((h, w), self.size, self.stride, self.pad)
        if isCuda:
            out = xp.empty((n, c) + outsize, dtype=data.dtype)
            self.forwardKernel(xp.ascontiguousarray(data), h, w, *outsize, *self.size, *self.stride, *self.pad, out)
            return out
        if not self.train:  # inference keeps no backward buffers
            self.buffers = {}
        if self.coversImage((h, w)):  # one matrix-vector product instead of h*w passes over strided views
            weights = xp.full(h * w, self.scale, dtype=data.dtype)
            return xp.matmul(data.reshape(n * c, h * w), weights).reshape(n, c, 1, 1)
        views = offsetViews(padImage(data, self.pad), self.size, self.stride, outsize)
        out = xp.empty((n, c) + outsize, dtype=data.dtype)
        self.splitBatch(self.sumViews, views, out)
        return out

    def sumViews(self, views, out):
        """out = the mean of views (the window offsets) over a part of the batch."""
        xp.copyto(out, views[0])
        for view in views[1:]:
            out += view
        out *= self.scale

    def updateGrad(self, grad):
        n, c, h, w = self.inData.shape
        (ph, pw), outsize = self.pad, grad.shape[2:]
        if isCuda:
            out = xp.empty(self.inData.shape, dtype=grad.dtype)
            self.backwardKernel(xp.ascontiguousarray(grad), h, w, *outsize, *self.size, *self.stride, ph, pw, out)
            return out
        if self.coversImage((h, w)):
            out = xp.empty(self.inData.shape, dtype=grad.dtype)
            xp.copyto(out, grad * self.scale)
            return out
        image = (xp.empty if self.tiles((h, w)) else xp.zeros)((n, c, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)
        views = offsetViews(image, self.size, self.stride, outsize)
        self.splitBatch(self.spreadGrad, views, grad, self.scratch("part", grad.shape, grad.dtype))
        return cropImage(image, self.pad)

    def spreadGrad(self, views, grad, part):
        """Give every pixel of each window grad / (fh*fw), over a part of the batch."""
        xp.multiply(grad, self.scale, out=part)
        if self.overlap:
            for view in views:
                view += part
        else:  # each pixel is in one window at most: write instead of add
            for view in views:
                xp.copyto(view, part)
