"""AvgPoolND: the mean of each window, on any number of spatial axes (AvgPool1D, 2D and 3D)."""
import numpy

from ..engine.backend import isCuda, xp
from ..engine.dtype import statDtype
from ..engine.im2col import offsetViews
from ..engine.kernels import ElementwiseKernel
from .globalavgpool import GlobalAvgPool
from .poolnd import PoolND, cropSpatial, geometryParams, padSpatial, windowPreamble

# the divisor of a window along one axis, as torch counts it: the window clipped to the padded input
# (ceil mode's last windows reach beyond it), or with countIncludePad false to the input itself
countPreamble = windowPreamble + """
// the type a window's sum accumulates in: float for float16 (statDtype), else T itself
template <typename T> struct Accumulator { typedef T type; };
template <> struct Accumulator<float16> { typedef float type; };

__device__ int axisCount(int start, int size, int n, int pad, int includePad) {
    int end = min(start + size, n + pad);
    return includePad ? end - start : min(end, n) - max(start, 0);
}

__device__ int windowDivisor(int od, int oh, int ow, int includePad, GEOMETRY_ARGS) {
    return axisCount(od * sd - pd, fd, D, pd, includePad) * axisCount(oh * sh - ph, fh, H, ph, includePad)
        * axisCount(ow * sw - pw, fw, W, pw, includePad);
}
"""


class AvgPoolND(PoolND):
    """Average pooling of (batch, maps, *spatial) inputs to (batch, maps, *outsize).

    pad (at most half the window) adds zero borders. countIncludePad (torch's count_include_pad): True
    (the default) divides each window by its size, padding included; False by the number of input
    elements it holds. In ceil mode a last window reaching beyond the padding divides by what it holds
    of the padded input (True) or of the input (False), as torch does. On the CPU the divisors are
    one small array over the output positions (an outer product of one vector per axis), and a window
    covering the whole unpadded input (global average pooling) takes one matrix-vector product.
    Precision: for float16 data the window sums and divisors are float32 (engine.dtype.statDtype), so a large
    window neither loses the 11-bit mantissa nor overflows float16's range; each output is rounded once.
    """

    forwardKernel = ElementwiseKernel(
        "raw T x, int32 includePad, " + geometryParams, "T y",
        """
        Window w = windowOf(i, GEOMETRY);
        Accumulator<T>::type acc = 0;
        FOR_WINDOW(w) acc += x[w.plane + ((ptrdiff_t)d * H + r) * W + c];
        y = (T)(acc / windowDivisor(w.od, w.oh, w.ow, includePad, GEOMETRY));
        """,
        "macrobatch_avgpool", preamble=countPreamble)

    backwardKernel = ElementwiseKernel(
        "raw T gy, int32 includePad, " + geometryParams, "T gx",
        "Cover v = coverOf(i, GEOMETRY); Accumulator<T>::type acc = 0; "
        "FOR_COVER(v) acc += gy[v.plane + ((ptrdiff_t)od * OH + oh) * OW + ow] "
        "/ (Accumulator<T>::type)windowDivisor(od, oh, ow, includePad, GEOMETRY); gx = (T)acc;",
        "macrobatch_avgpool_grad", preamble=countPreamble)

    def __init__(self, size=2, stride=None, pad=0, ceilMode=False, countIncludePad=True, name=None):
        super().__init__(size, stride, pad, 1, ceilMode, name)
        self.registerBlueprint(locals())
        if not isinstance(countIncludePad, bool):
            raise ValueError(f"countIncludePad must be True or False, got {countIncludePad!r}")
        self.countIncludePad = countIncludePad
        self.scale = 1.0 / self.windowCount()

    def coversImage(self, insize):
        """Whether one unpadded window covers the whole input (its spatial sizes insize): global average pooling."""
        return not any(self.pad) and self.size == tuple(insize)

    def factors(self, insize, outsize, dtype):
        """What each output's window sum is multiplied by: the scalar 1 / window size when every window
        holds its full size, else an array of shape outsize (broadcast over batch and maps) of 1 / divisor."""
        counts = []
        for n, o, k, s, p in zip(insize, outsize, self.size, self.stride, self.pad):
            start = numpy.arange(o) * s - p
            end = numpy.minimum(start + k, n + p)
            counts.append(end - start if self.countIncludePad else numpy.minimum(end, n) - numpy.maximum(start, 0))
        if all((c == k).all() for c, k in zip(counts, self.size)):
            return self.scale
        divisor = numpy.ones((), dtype=numpy.float64)
        for c in counts:
            divisor = numpy.multiply.outer(divisor, c)
        return xp.asarray(1.0 / divisor, dtype=dtype)

    def updateData(self, data):
        outShape = self.outShape(data.shape)
        if isCuda:
            out = xp.empty(outShape, dtype=data.dtype)
            self.forwardKernel(xp.ascontiguousarray(data), int(self.countIncludePad),
                               *self.kernelGeometry(data.shape, outShape), out)
            return out
        if not self.train:  # inference keeps no backward buffers
            self.buffers = {}
        if self.coversImage(data.shape[2:]):  # one matrix-vector product instead of a pass per window offset
            return GlobalAvgPool.spatialMean(data).reshape(outShape)
        image = padSpatial(data, self.pad, self.paddedSize(data.shape[2:]))
        views = offsetViews(image, self.size, self.stride, outShape[2:])
        out = xp.empty(outShape, dtype=data.dtype)
        factor = self.factors(data.shape[2:], outShape[2:], statDtype(data.dtype))
        self.splitBatch(lambda parts, part: self.sumViews(parts, part, factor), views, out)
        return out

    @staticmethod
    def sumViews(views, out, factor):
        """out = the sum of views (the window offsets) times factor, over a part of the batch; the sum is
        taken in out itself, or for float16 in a float32 array."""
        dtype = statDtype(out.dtype)
        acc = out if dtype == out.dtype else xp.empty(out.shape, dtype=dtype)
        xp.copyto(acc, views[0])
        for view in views[1:]:
            acc += view
        xp.multiply(acc, factor, out=out)

    def updateGrad(self, grad):
        inShape = self.inData.shape
        if isCuda:
            out = xp.empty(inShape, dtype=grad.dtype)
            self.backwardKernel(xp.ascontiguousarray(grad), int(self.countIncludePad),
                                *self.kernelGeometry(inShape, grad.shape), out)
            return out
        if self.coversImage(inShape[2:]):
            return GlobalAvgPool.spreadMean(grad.reshape(grad.shape[:2]), inShape)
        image = self.gradImage(inShape, grad.dtype)
        views = offsetViews(image, self.size, self.stride, grad.shape[2:])
        factor = self.factors(inShape[2:], grad.shape[2:], grad.dtype)
        self.splitBatch(lambda parts, g, part: self.spreadGrad(parts, g, part, factor), views, grad,
                        self.scratch("part", grad.shape, grad.dtype))
        return cropSpatial(image, self.pad, inShape[2:])

    def spreadGrad(self, views, grad, part, factor):
        """Give every element of each window grad times its factor, over a part of the batch."""
        xp.multiply(grad, factor, out=part)
        if self.overlap:
            for view in views:
                view += part
        else:  # each element is in one window at most: write instead of add
            for view in views:
                xp.copyto(view, part)
