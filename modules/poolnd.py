"""PoolND: the window geometry, input check, padding and CPU work split shared by the pooling modules
of one, two and three spatial axes (Pool1D, Pool2D and Pool3D say how many)."""
import math

from ..engine.backend import xp
from ..engine.im2col import buffer, checkImageShape, coverPreamble, ntuple, outSize
from ..engine.parallel import minPart, runParallel, splitRanges
from .module import Module


# The CUDA kernels of the pooling modules take the geometry of three spatial axes (kernelGeometry) and
# find, for an output element, its window clipped to the input (windowOf), or for an input element
# the output elements whose windows cover it (coverOf); fewer axes run as three with leading axes of size 1.
geometryParams = ("int32 D, int32 H, int32 W, int32 OD, int32 OH, int32 OW, int32 fd, int32 fh, int32 fw, "
                  "int32 sd, int32 sh, int32 sw, int32 pd, int32 ph, int32 pw")
windowPreamble = coverPreamble + """
#define GEOMETRY D, H, W, OD, OH, OW, fd, fh, fw, sd, sh, sw, pd, ph, pw
#define GEOMETRY_ARGS int D, int H, int W, int OD, int OH, int OW, int fd, int fh, int fw, \\
    int sd, int sh, int sw, int pd, int ph, int pw

// loops over the input elements (d, r, c) of a Window, and over the output elements (od, oh, ow) of a Cover
#define FOR_WINDOW(w) for (int d = w.dLo; d < w.dHi; ++d) for (int r = w.rLo; r < w.rHi; ++r) \\
    for (int c = w.cLo; c < w.cHi; ++c)
#define FOR_COVER(v) for (int od = v.odLo; od <= v.odHi; ++od) for (int oh = v.ohLo; oh <= v.ohHi; ++oh) \\
    for (int ow = v.owLo; ow <= v.owHi; ++ow)

struct Window { ptrdiff_t plane; int z0, y0, x0, dLo, dHi, rLo, rHi, cLo, cHi; };

__device__ Window windowOf(ptrdiff_t i, GEOMETRY_ARGS) {
    Window w;
    int ow = i % OW; ptrdiff_t rest = i / OW;
    int oh = rest % OH; rest /= OH;
    int od = rest % OD;
    w.plane = rest / OD * D * H * W;
    w.z0 = od * sd - pd; w.y0 = oh * sh - ph; w.x0 = ow * sw - pw;
    w.dLo = max(w.z0, 0); w.dHi = min(w.z0 + fd, D);
    w.rLo = max(w.y0, 0); w.rHi = min(w.y0 + fh, H);
    w.cLo = max(w.x0, 0); w.cHi = min(w.x0 + fw, W);
    return w;
}

struct Cover { ptrdiff_t plane; int z, y, x, odLo, odHi, ohLo, ohHi, owLo, owHi; };

__device__ Cover coverOf(ptrdiff_t i, GEOMETRY_ARGS) {
    Cover v;
    v.x = i % W + pw; ptrdiff_t rest = i / W;
    v.y = rest % H + ph; rest /= H;
    v.z = rest % D + pd;
    v.plane = rest / D * OD * OH * OW;
    coverRange(v.z, fd, sd, OD, &v.odLo, &v.odHi);
    coverRange(v.y, fh, sh, OH, &v.ohLo, &v.ohHi);
    coverRange(v.x, fw, sw, OW, &v.owLo, &v.owHi);
    return v;
}
"""


def padSpatial(data, pad, value=0):
    """data (N, C, ...) padded by pad[i] on each side of spatial axis i with value (max pooling pads with
    -inf, where engine.im2col.padImage gives zeros); data itself when pad is zero."""
    if not any(pad):
        return data
    out = xp.full(data.shape[:2] + tuple(n + 2 * p for n, p in zip(data.shape[2:], pad)), value, dtype=data.dtype)
    out[(Ellipsis,) + tuple(slice(p, p + n) for n, p in zip(data.shape[2:], pad))] = data
    return out


def cropSpatial(image, pad):
    """image (N, C, ...) without its pad borders, contiguous; image itself when pad is zero."""
    if not any(pad):
        return image
    return xp.ascontiguousarray(image[(Ellipsis,) + tuple(slice(p, n - p) for n, p in zip(image.shape[2:], pad))])


class PoolND(Module):
    """Base of the pooling modules: size, stride and pad take an int or one int per spatial axis; stride
    defaults to size (windows side by side); pad is at most half the window, as in PyTorch, so no
    window is all padding. Inputs are (batch, maps, *spatial); subclasses set ``nd``, the number of
    spatial axes. On the CPU the pooling modules run one elementwise pass per window offset, over the
    strided views of engine.im2col.offsetViews (reducing a reshaped view instead, even for side-by-side
    windows, measured 5-15x slower).

    The CUDA kernels of the subclasses are written for three spatial axes (windowPreamble)."""

    nd = None

    def __init__(self, size=2, stride=None, pad=0, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.size = ntuple(size, "size", 1, self.nd)
        self.stride = self.size if stride is None else ntuple(stride, "stride", 1, self.nd)
        self.pad = ntuple(pad, "pad", 0, self.nd)
        if any(2 * p > k for k, p in zip(self.size, self.pad)):
            raise ValueError(f"pad {self.pad} must be at most half the window size {self.size}")
        self.overlap = any(s < k for s, k in zip(self.stride, self.size))
        self.buffers = {}

    def checkDataShape(self, shape):
        checkImageShape(shape, self.size, self.pad, self.describe())

    def outShape(self, shape):
        """(batch, maps, *outsize) of an input of this shape."""
        return tuple(shape[:2]) + outSize(shape[2:], self.size, self.stride, self.pad)

    def paddedShape(self, shape):
        return tuple(shape[:2]) + tuple(n + 2 * p for n, p in zip(shape[2:], self.pad))

    def windowCount(self):
        return math.prod(self.size)

    def kernelGeometry(self, inShape, outShape):
        """The int arguments of a three-axis CUDA kernel: D, H, W, OD, OH, OW, then size, stride and pad
        (3 each), missing leading axes given size 1, stride 1 and pad 0."""
        ones, zeros = (1,) * (3 - self.nd), (0,) * (3 - self.nd)
        return (*ones, *inShape[2:], *ones, *outShape[2:], *ones, *self.size, *ones, *self.stride, *zeros, *self.pad)

    def tiles(self, insize):
        """Whether the windows cover every element of the padded spatial axes exactly once, so that a
        backward pass writing every window leaves nothing to zero beforehand."""
        return all(s == k and (n + 2 * p) % k == 0 for n, k, s, p in zip(insize, self.size, self.stride, self.pad))

    def gradImage(self, inShape, dtype):
        """A padded input-gradient array for the window views to write or add into: zeroed unless tiled."""
        return (xp.empty if self.tiles(inShape[2:]) else xp.zeros)(self.paddedShape(inShape), dtype=dtype)

    def scratch(self, key, shape, dtype):
        """A CPU work buffer kept between calls of the same shape and dtype; never returned to the caller."""
        self.buffers[key] = buffer(self.buffers.get(key), shape, dtype)
        return self.buffers[key]

    @staticmethod
    def splitBatch(fn, *arrays):
        """fn(*parts) for the parts of arrays (each (batch, ...), or a list of such) over disjoint ranges
        of samples, on the CPU cores: fn writes its parts in place. The first array sets the work per
        sample, so small batches stay on one core."""
        lead = arrays[0][0] if isinstance(arrays[0], list) else arrays[0]
        n = lead.shape[0]
        perSample = max(1, lead.size // max(n, 1))
        ranges = splitRanges(n, minimum=-(-minPart // perSample))

        def part(a, b):
            fn(*([v[a:b] for v in ary] if isinstance(ary, list) else ary[a:b] for ary in arrays))

        runParallel(part, ranges)
