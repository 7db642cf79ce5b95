"""Lowering of N-d windows to matrices for the convolutions, and the window geometry helpers they (and
the pooling modules' CUDA kernels) share.

``im2col`` turns an (N, C, *S) batch (S: 1, 2 or 3 spatial sizes) into the column matrix of shape
(C*K, N*O) (K = prod(size), O = prod(outsize)): row (c, k) holds, for every output position (n, o), the
input element that kernel offset k of channel c sees there. A convolution is then a single GEMM
W(outmaps, C*K) @ cols. ``col2im`` is its adjoint: it sums a column matrix back onto the image.
Dilation spaces the kernel taps: offset k reads the padded input at o*stride + k*dilation.

On NumPy the lowering is one strided copy (a sliding-window view) and col2im a loop over the K kernel
offsets adding strided slices; on CuPy each is one elementwise kernel, written for 3 spatial dims
(1D and 2D run it with leading unit dims).
"""
import itertools

import numpy
from numpy.lib.stride_tricks import sliding_window_view

from .backend import isCuda, xp
from .errors import ShapeError
from .kernels import ElementwiseKernel

axisNames = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
tupleNames = {1: "(l,) tuple", 2: "(h, w) pair", 3: "(d, h, w) triple"}


def _isInt(value):
    return isinstance(value, (int, numpy.integer)) and not isinstance(value, bool)


def ntuple(value, what, minimum, nd):
    """nd ints from an int or a sequence of nd ints, each at least minimum; what names the argument in errors."""
    vals = (value,) * nd if _isInt(value) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(vals) != nd or not all(_isInt(v) and v >= minimum for v in vals):
        raise ValueError(f"{what} must be an int or an {tupleNames[nd]} of ints >= {minimum}, got {value!r}")
    return tuple(int(v) for v in vals)


def pair(value, what, minimum):
    """(h, w) from an int or a pair of ints, each at least minimum; what names the argument in errors."""
    return ntuple(value, what, minimum, 2)


def extent(size, dilation=None):
    """The span of a (dilated) window along each axis: dilation*(size-1) + 1."""
    return tuple(size) if dilation is None else tuple(d * (k - 1) + 1 for k, d in zip(size, dilation))


def checkImageShape(shape, size, pad, where, maps=None, dilation=None):
    """Raise ShapeError unless shape is (batch, maps, *spatial) with len(size) spatial axes (any maps
    when None) and the padded input is at least the (dilated) window; where names the module."""
    nd = len(size)
    if len(shape) != nd + 2 or (maps is not None and shape[1] != maps):
        layout = ", ".join(("batch", "maps" if maps is None else str(maps)) + axisNames[nd])
        raise ShapeError(f"{where}: expected input of shape ({layout}), got {tuple(shape)}")
    span = extent(size, dilation)
    if any(n + 2 * p < k for n, k, p in zip(shape[2:], span, pad)):
        raise ShapeError(f"{where}: input of shape {tuple(shape)} padded by {tuple(pad)} is smaller than "
                         f"the {'x'.join(map(str, span))} window")


def outSize(insize, size, stride, pad, dilation=None):
    """The output sizes of a window of size (spaced by dilation) sliding with stride over an input of
    insize padded by pad on each side."""
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(insize, extent(size, dilation), stride, pad))


def buffer(ary, shape, dtype, zeroed=False):
    """ary when it already has this shape and dtype (a buffer kept between calls), else a new empty array,
    or zeros when zeroed (for callers that write the same elements each call and need the others to stay
    zero: the pads of engine.shiftgrid's layout)."""
    if ary is not None and ary.shape == tuple(shape) and ary.dtype == dtype:
        return ary
    return (xp.zeros if zeroed else xp.empty)(shape, dtype=dtype)


def padImage(data, pad):
    """data (.., *S) padded with zeros on its last len(pad) axes, by pad on each side; data itself when
    pad is zero."""
    if not any(pad):
        return data
    lead, spatial = data.shape[:-len(pad)], data.shape[-len(pad):]
    out = xp.zeros(lead + tuple(n + 2 * p for n, p in zip(spatial, pad)), dtype=data.dtype)
    out[(Ellipsis,) + tuple(slice(p, p + n) for n, p in zip(spatial, pad))] = data
    return out


def offsetViews(image, size, stride, outsize, dilation=None):
    """For each kernel offset (row-major over size), the strided view of image (.., *Sp) that the offset
    sees at every output position: a list of prod(size) views of shape (.., *outsize)."""
    dilation = dilation or (1,) * len(size)
    return [image[(Ellipsis,) + tuple(slice(k * d, k * d + s * (o - 1) + 1, s)
                                      for k, d, s, o in zip(offset, dilation, stride, outsize))]
            for offset in itertools.product(*map(range, size))]


# CUDA helper for the kernels that gather onto input pixels: the output positions o whose window
# [o*stride, o*stride + size) covers padded coordinate pos are lo..hi (empty when lo > hi)
coverPreamble = """
__device__ void coverRange(int pos, int size, int stride, int outsize, int* lo, int* hi) {
    *lo = pos >= size ? (pos - size) / stride + 1 : 0;
    *hi = min(pos / stride, outsize - 1);
}
"""

# The CUDA kernels take 3 spatial dims (d, h, w) and, for each, the input size S, output size O, kernel
# size k, stride s, pad p and dilation l
_geometryParams = ", ".join(f"int32 {v}{a}" for v in "SOkspl" for a in "dhw")

_im2colKernel = ElementwiseKernel(
    "raw T x, int32 N, int32 C, " + _geometryParams,
    "T col",
    """
    int ow = i % Ow; ptrdiff_t rest = i / Ow;
    int oh = rest % Oh; rest /= Oh;
    int od = rest % Od; rest /= Od;
    int b = rest % N; rest /= N;
    int jw = rest % kw; rest /= kw;
    int jh = rest % kh; rest /= kh;
    int jd = rest % kd;
    int c = rest / kd;
    int z = od * sd - pd + jd * ld, y = oh * sh - ph + jh * lh, x0 = ow * sw - pw + jw * lw;
    col = (z >= 0 && z < Sd && y >= 0 && y < Sh && x0 >= 0 && x0 < Sw)
        ? x[(((ptrdiff_t)(b * C + c) * Sd + z) * Sh + y) * Sw + x0] : (T)0;
    """,
    "macrobatch_im2col")

# Each image element sums the column entries of the kernel offsets j whose tap lands on it: padded
# coordinate pos = o*stride + j*dilation for an output position o in range
_col2imKernel = ElementwiseKernel(
    "raw T col, int32 N, int32 C, " + _geometryParams,
    "T img",
    """
    int x0 = i % Sw + pw; ptrdiff_t rest = i / Sw;
    int y = rest % Sh + ph; rest /= Sh;
    int z = rest % Sd + pd; rest /= Sd;
    int c = rest % C;
    int b = rest / C;
    T acc = (T)0;
    for (int jd = 0; jd < kd; ++jd) {
        int td = z - jd * ld;
        if (td < 0 || td % sd != 0 || td / sd >= Od) continue;
        for (int jh = 0; jh < kh; ++jh) {
            int th = y - jh * lh;
            if (th < 0 || th % sh != 0 || th / sh >= Oh) continue;
            for (int jw = 0; jw < kw; ++jw) {
                int tw = x0 - jw * lw;
                if (tw < 0 || tw % sw != 0 || tw / sw >= Ow) continue;
                ptrdiff_t k = ((ptrdiff_t)c * kd + jd) * kh * kw + jh * kw + jw;
                acc += col[(((k * N + b) * Od + td / sd) * Oh + th / sh) * Ow + tw / sw];
            }
        }
    }
    img = acc;
    """,
    "macrobatch_col2im")


def _cudaGeometry(spatial, outsize, size, stride, pad, dilation):
    """The kernels' geometry arguments: each of the six per-axis tuples left-filled to 3 dims."""
    fill = 3 - len(size)
    return [v for values, unit in ((spatial, 1), (outsize, 1), (size, 1), (stride, 1), (pad, 0), (dilation, 1))
            for v in (unit,) * fill + tuple(values)]


def im2col(data, size, stride, pad, dilation=None, out=None, outsize=None):
    """The (C*K, N*O) column matrix of data (N, C, *S), rows ordered (c, *k) like a flattened
    (outmaps, C, *size) weight, columns ordered (n, *o). Written into out when its shape and dtype fit
    (a buffer kept between calls), else into a new array. outsize: the first window positions only, fewer
    than the input allows (a transposed convolution's outPad can add a position its input never had)."""
    n, c, spatial, nd = data.shape[0], data.shape[1], data.shape[2:], len(size)
    dilation = dilation or (1,) * nd
    outsize = outsize or outSize(spatial, size, stride, pad, dilation)
    out = buffer(out, (c * numpy.prod(size, dtype=int), n * numpy.prod(outsize, dtype=int)), data.dtype)
    if isCuda:
        _im2colKernel(xp.ascontiguousarray(data), n, c, *_cudaGeometry(spatial, outsize, size, stride, pad, dilation),
                      out)
        return out
    axes = tuple(range(2, 2 + nd))
    windows = sliding_window_view(padImage(data, pad), extent(size, dilation), axis=axes)
    windows = windows[(Ellipsis,) + tuple(slice(None, s * o, s) for s, o in zip(stride, outsize))
                      + tuple(slice(None, None, d) for d in dilation)]
    order = (1,) + tuple(range(2 + nd, 2 + 2 * nd)) + (0,) + axes
    xp.copyto(out.reshape((c,) + tuple(size) + (n,) + outsize), windows.transpose(order))
    return out


def col2im(cols, shape, size, stride, pad, dilation=None, outsize=None):
    """Sum the column matrix cols (C*K, N*O) back onto a new (N, C, *S) image of the given shape: every
    element gets the sum of the entries that im2col copied it to (the adjoint of im2col, outsize as there)."""
    n, c, spatial, nd = shape[0], shape[1], tuple(shape[2:]), len(size)
    dilation = dilation or (1,) * nd
    outsize = outsize or outSize(spatial, size, stride, pad, dilation)
    if isCuda:
        out = xp.empty(shape, dtype=cols.dtype)
        _col2imKernel(xp.ascontiguousarray(cols), n, c, *_cudaGeometry(spatial, outsize, size, stride, pad, dilation),
                      out)
        return out
    # Accumulating in (C, N, ..) order keeps both operands of each add in the same order: faster slices
    image = xp.zeros((c, n) + tuple(s + 2 * p for s, p in zip(spatial, pad)), dtype=cols.dtype)
    cols = cols.reshape((c, -1, n) + outsize)
    for k, view in enumerate(offsetViews(image, size, stride, outsize, dilation)):
        view += cols[:, k]
    crop = image[(Ellipsis,) + tuple(slice(p, p + s) for s, p in zip(spatial, pad))]
    return xp.ascontiguousarray(crop.swapaxes(0, 1))
