"""PoolND: the window geometry, input check and padding shared by the pooling modules
of one, two and three spatial axes (Pool1D, Pool2D and Pool3D say how many)."""
import math

from ..engine.backend import xp
from ..engine.im2col import buffer, checkImageShape, coverPreamble, extent, ntuple
from .module import Module


# The CUDA kernels of the pooling modules take the geometry of three spatial axes (kernelGeometry) and
# find, for an output element, its window's taps that land inside the input (windowOf), or for an input
# element the output elements whose windows span it (coverOf); fewer axes run as three with leading axes
# of size 1. Size, stride, pad and dilation are per axis (f, s, p, l); a window of output o starts at
# o * s - p and its tap j reads o * s - p + j * l.
geometryParams = ("int32 D, int32 H, int32 W, int32 OD, int32 OH, int32 OW, int32 fd, int32 fh, int32 fw, "
                  "int32 sd, int32 sh, int32 sw, int32 pd, int32 ph, int32 pw, int32 ld, int32 lh, int32 lw")
windowPreamble = coverPreamble + """
#define GEOMETRY D, H, W, OD, OH, OW, fd, fh, fw, sd, sh, sw, pd, ph, pw, ld, lh, lw
#define GEOMETRY_ARGS int D, int H, int W, int OD, int OH, int OW, int fd, int fh, int fw, \\
    int sd, int sh, int sw, int pd, int ph, int pw, int ld, int lh, int lw

// loops over the taps (jd, jh, jw) of a Window that land inside the input, at input element (d, r, c),
// and over the output elements (od, oh, ow) of a Cover
#define FOR_WINDOW(w) for (int jd = w.jdLo, d = w.z0 + jd * ld; jd < w.jdHi; ++jd, d += ld) \\
    for (int jh = w.jhLo, r = w.y0 + jh * lh; jh < w.jhHi; ++jh, r += lh) \\
    for (int jw = w.jwLo, c = w.x0 + jw * lw; jw < w.jwHi; ++jw, c += lw)
#define FOR_COVER(v) for (int od = v.odLo; od <= v.odHi; ++od) for (int oh = v.ohLo; oh <= v.ohHi; ++oh) \\
    for (int ow = v.owLo; ow <= v.owHi; ++ow)

// the taps lo..hi-1 of a window starting at start (spaced by dilation) that land in [0, n); every window
// starts before n (ceil mode's rule), and pad at most half the window keeps lo < hi
__device__ void tapRange(int start, int size, int dilation, int n, int* lo, int* hi) {
    *lo = start < 0 ? (dilation - 1 - start) / dilation : 0;
    *hi = min(size, (n - start + dilation - 1) / dilation);
}

struct Window { ptrdiff_t plane; int od, oh, ow, z0, y0, x0, jdLo, jdHi, jhLo, jhHi, jwLo, jwHi; };

__device__ Window windowOf(ptrdiff_t i, GEOMETRY_ARGS) {
    Window w;
    w.ow = i % OW; ptrdiff_t rest = i / OW;
    w.oh = rest % OH; rest /= OH;
    w.od = rest % OD;
    w.plane = rest / OD * D * H * W;
    w.z0 = w.od * sd - pd; w.y0 = w.oh * sh - ph; w.x0 = w.ow * sw - pw;
    tapRange(w.z0, fd, ld, D, &w.jdLo, &w.jdHi);
    tapRange(w.y0, fh, lh, H, &w.jhLo, &w.jhHi);
    tapRange(w.x0, fw, lw, W, &w.jwLo, &w.jwHi);
    return w;
}

struct Cover { ptrdiff_t plane; int z, y, x, odLo, odHi, ohLo, ohHi, owLo, owHi; };

// the output elements whose window span covers input element i (padded coordinates z, y, x); with
// dilation a span holds gaps, so the caller checks that (z - od * sd) % ld == 0 and so on
__device__ Cover coverOf(ptrdiff_t i, GEOMETRY_ARGS) {
    Cover v;
    v.x = i % W + pw; ptrdiff_t rest = i / W;
    v.y = rest % H + ph; rest /= H;
    v.z = rest % D + pd;
    v.plane = rest / D * OD * OH * OW;
    coverRange(v.z, (fd - 1) * ld + 1, sd, OD, &v.odLo, &v.odHi);
    coverRange(v.y, (fh - 1) * lh + 1, sh, OH, &v.ohLo, &v.ohHi);
    coverRange(v.x, (fw - 1) * lw + 1, sw, OW, &v.owLo, &v.owHi);
    return v;
}
"""


def padSpatial(data, pad, padded, value=0):
    """data (N, C, ...) inside an array of spatial sizes padded filled with value, pad[i] elements from the
    start of spatial axis i (the rest of padded goes after it: pad, plus ceil mode's last windows);
    data itself when padded is data's size. Max pooling pads with -inf, average pooling with zeros."""
    if tuple(padded) == data.shape[2:]:
        return data
    out = xp.full(data.shape[:2] + tuple(padded), value, dtype=data.dtype)
    out[(Ellipsis,) + tuple(slice(p, p + n) for n, p in zip(data.shape[2:], pad))] = data
    return out


def cropSpatial(image, pad, insize):
    """The input of spatial sizes insize inside image (N, C, ...) that padSpatial built, contiguous;
    image itself when it is that size."""
    if image.shape[2:] == tuple(insize):
        return image
    return xp.ascontiguousarray(image[(Ellipsis,) + tuple(slice(p, p + n) for n, p in zip(insize, pad))])


class PoolND(Module):
    """Base of the pooling modules: size, stride, pad and dilation take an int or one int per spatial
    axis; stride defaults to size (windows side by side); pad is at most half the window, as in
    PyTorch, so no window is all padding; dilation spaces a window's taps (max pooling only).
    ceilMode: round the output size up instead of down (torch's ceil_mode), so that a last, partial
    window covers the end of the input, provided it starts inside the input or its left padding
    (torch's rule); it reads beyond the right padding as more padding. Inputs are (batch, maps, *spatial);
    subclasses set ``nd``, the number of spatial axes, and record their blueprint. On the CPU the
    pooling modules run one elementwise pass per window offset, over the strided views of
    engine.im2col.offsetViews (reducing a reshaped view instead, even for side-by-side windows,
    measured 5-15x slower).

    The CUDA kernels of the subclasses are written for three spatial axes (windowPreamble)."""

    nd = None

    def __init__(self, size=2, stride=None, pad=0, dilation=1, ceilMode=False, name=None):
        super().__init__(name)
        self.size = ntuple(size, "size", 1, self.nd)
        self.stride = self.size if stride is None else ntuple(stride, "stride", 1, self.nd)
        self.pad = ntuple(pad, "pad", 0, self.nd)
        self.dilation = ntuple(dilation, "dilation", 1, self.nd)
        if any(2 * p > k for k, p in zip(self.size, self.pad)):
            raise ValueError(f"pad {self.pad} must be at most half the window size {self.size}")
        if not isinstance(ceilMode, bool):
            raise ValueError(f"ceilMode must be True or False, got {ceilMode!r}")
        self.ceilMode = ceilMode
        self.span = extent(self.size, self.dilation)
        self.overlap = any(s < e for s, e in zip(self.stride, self.span))
        self.buffers = {}

    def checkDataShape(self, shape):
        checkImageShape(shape, self.size, self.pad, self.describe(), dilation=self.dilation)

    def outLength(self, n, axis):
        """The output size along one spatial axis of input size n: rounded up in ceil mode, less a
        last window that would start in the right padding."""
        e, s, p = self.span[axis], self.stride[axis], self.pad[axis]
        if not self.ceilMode:
            return (n + 2 * p - e) // s + 1
        o = -(-(n + 2 * p - e) // s) + 1
        return o - 1 if (o - 1) * s >= n + p else o

    def outShape(self, shape):
        """(batch, maps, *outsize) of an input of this shape."""
        return tuple(shape[:2]) + tuple(self.outLength(n, i) for i, n in enumerate(shape[2:]))

    def paddedSize(self, insize):
        """The spatial sizes of the padded input the window views read: pad on each side, and in ceil
        mode as much more at the end as the last window reaches beyond."""
        return tuple(max(n + 2 * p, (self.outLength(n, i) - 1) * s + e)
                     for i, (n, p, s, e) in enumerate(zip(insize, self.pad, self.stride, self.span)))

    def windowCount(self):
        return math.prod(self.size)

    def kernelGeometry(self, inShape, outShape):
        """The int arguments of a three-axis CUDA kernel: D, H, W, OD, OH, OW, then size, stride, pad and
        dilation (3 each), missing leading axes given size 1, stride 1, pad 0 and dilation 1."""
        ones, zeros = (1,) * (3 - self.nd), (0,) * (3 - self.nd)
        return (*ones, *inShape[2:], *ones, *outShape[2:], *ones, *self.size, *ones, *self.stride, *zeros, *self.pad,
                *ones, *self.dilation)

    def tiles(self, insize):
        """Whether the windows cover every element of the padded spatial axes exactly once, so that a
        backward pass writing every window leaves nothing to zero beforehand."""
        return all(s == k and d == 1 and n % k == 0
                   for n, k, s, d in zip(self.paddedSize(insize), self.size, self.stride, self.dilation))

    def gradImage(self, inShape, dtype):
        """A padded input-gradient array for the window views to write or add into: zeroed unless tiled."""
        shape = tuple(inShape[:2]) + self.paddedSize(inShape[2:])
        return (xp.empty if self.tiles(inShape[2:]) else xp.zeros)(shape, dtype=dtype)

    def scratch(self, key, shape, dtype):
        """A CPU work buffer kept between calls of the same shape and dtype; never returned to the caller."""
        self.buffers[key] = buffer(self.buffers.get(key), shape, dtype)
        return self.buffers[key]
