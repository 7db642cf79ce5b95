"""AvgPoolND: the mean of each window, on any number of spatial axes (AvgPool1D, 2D and 3D)."""
from ..engine.backend import isCuda, xp
from ..engine.im2col import offsetViews, padImage
from ..engine.kernels import ElementwiseKernel
from .globalavgpool import GlobalAvgPool
from .poolnd import PoolND, cropSpatial, geometryParams, windowPreamble


class AvgPoolND(PoolND):
    """Average pooling of (batch, maps, *spatial) inputs to (batch, maps, *outsize).

    pad (at most half the window) adds zero borders that count in the mean, so every window is divided
    by its full size (PyTorch's default, count_include_pad=True). On the CPU, a window covering the
    whole unpadded input (global average pooling) takes one matrix-vector product.
    """

    forwardKernel = ElementwiseKernel(
        "raw T x, " + geometryParams, "T y",
        "Window w = windowOf(i, GEOMETRY); T acc = (T)0; "
        "FOR_WINDOW(w) acc += x[w.plane + ((ptrdiff_t)d * H + r) * W + c]; y = acc / (T)(fd * fh * fw);",
        "macrobatch_avgpool", preamble=windowPreamble)

    backwardKernel = ElementwiseKernel(
        "raw T gy, " + geometryParams, "T gx",
        "Cover v = coverOf(i, GEOMETRY); T acc = (T)0; "
        "FOR_COVER(v) acc += gy[v.plane + ((ptrdiff_t)od * OH + oh) * OW + ow]; gx = acc / (T)(fd * fh * fw);",
        "macrobatch_avgpool_grad", preamble=windowPreamble)

    def __init__(self, size=2, stride=None, pad=0, name=None):
        super().__init__(size, stride, pad, name)
        self.scale = 1.0 / self.windowCount()

    def coversImage(self, insize):
        """Whether one unpadded window covers the whole input (its spatial sizes insize): global average pooling."""
        return not any(self.pad) and self.size == tuple(insize)

    def updateData(self, data):
        outShape = self.outShape(data.shape)
        if isCuda:
            out = xp.empty(outShape, dtype=data.dtype)
            self.forwardKernel(xp.ascontiguousarray(data), *self.kernelGeometry(data.shape, outShape), out)
            return out
        if not self.train:  # inference keeps no backward buffers
            self.buffers = {}
        if self.coversImage(data.shape[2:]):  # one matrix-vector product instead of a pass per window offset
            return GlobalAvgPool.spatialMean(data).reshape(outShape)
        views = offsetViews(padImage(data, self.pad), self.size, self.stride, outShape[2:])
        out = xp.empty(outShape, dtype=data.dtype)
        self.splitBatch(self.sumViews, views, out)
        return out

    def sumViews(self, views, out):
        """out = the mean of views (the window offsets) over a part of the batch."""
        xp.copyto(out, views[0])
        for view in views[1:]:
            out += view
        out *= self.scale

    def updateGrad(self, grad):
        inShape = self.inData.shape
        if isCuda:
            out = xp.empty(inShape, dtype=grad.dtype)
            self.backwardKernel(xp.ascontiguousarray(grad), *self.kernelGeometry(inShape, grad.shape), out)
            return out
        if self.coversImage(inShape[2:]):
            return GlobalAvgPool.spreadMean(grad.reshape(grad.shape[:2]), inShape)
        image = self.gradImage(inShape, grad.dtype)
        views = offsetViews(image, self.size, self.stride, grad.shape[2:])
        self.splitBatch(self.spreadGrad, views, grad, self.scratch("part", grad.shape, grad.dtype))
        return cropSpatial(image, self.pad)

    def spreadGrad(self, views, grad, part):
        """Give every element of each window grad / window size, over a part of the batch."""
        xp.multiply(grad, self.scale, out=part)
        if self.overlap:
            for view in views:
                view += part
        else:  # each element is in one window at most: write instead of add
            for view in views:
                xp.copyto(view, part)
