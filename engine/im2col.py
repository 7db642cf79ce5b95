"""Lowering of 2D windows to matrices, and the window geometry convolution and pooling share.

``im2col`` turns an (N, C, H, W) image into the column matrix of shape (C*fh*fw, N*OH*OW): row
(c, ki, kj) holds, for every output position (n, oh, ow), the input pixel that kernel offset
(ki, kj) of channel c sees there. A convolution is then a single GEMM W(outmaps, C*fh*fw) @ cols.
``col2im`` is its adjoint: it sums a column matrix back onto the image.

On NumPy the lowering is one strided copy (a sliding-window view) and col2im a loop over the
fh*fw kernel offsets adding strided slices; on CuPy each is one elementwise kernel.
"""
import numpy
from numpy.lib.stride_tricks import sliding_window_view

from .backend import isCuda, xp
from .errors import ShapeError
from .kernels import ElementwiseKernel


def _isInt(value):
    return isinstance(value, (int, numpy.integer)) and not isinstance(value, bool)


def pair(value, what, minimum):
    """(h, w) from an int or a pair of ints, each at least minimum; what names the argument in errors."""
    hw = (value, value) if _isInt(value) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(hw) != 2 or not all(_isInt(v) and v >= minimum for v in hw):
        raise ValueError(f"{what} must be an int or an (h, w) pair of ints >= {minimum}, got {value!r}")
    return int(hw[0]), int(hw[1])


def poolGeometry(size, stride, pad):
    """(size, stride, pad) pairs of a pooling window; stride None means stride = size (no overlap).
    pad is at most half the window, as in PyTorch, so that every window holds a real pixel."""
    size = pair(size, "size", 1)
    stride = size if stride is None else pair(stride, "stride", 1)
    pad = pair(pad, "pad", 0)
    if any(2 * p > k for k, p in zip(size, pad)):
        raise ValueError(f"pad {pad} must be at most half the window size {size}")
    return size, stride, pad


def checkImageShape(shape, size, pad, where, maps=None):
    """Raise ShapeError unless shape is (batch, maps, height, width) (any maps when None) and the
    padded image is at least the window size; where names the module in the message."""
    if len(shape) != 4 or (maps is not None and shape[1] != maps):
        layout = f"(batch, {'maps' if maps is None else maps}, height, width)"
        raise ShapeError(f"{where}: expected input of shape {layout}, got {tuple(shape)}")
    if any(n + 2 * p < k for n, k, p in zip(shape[2:], size, pad)):
        raise ShapeError(f"{where}: input of shape {tuple(shape)} padded by {pad} is smaller than "
                         f"the {size[0]}x{size[1]} window")


def outSize(insize, size, stride, pad):
    """(OH, OW) of a window of size sliding with stride over an (H, W) image padded by pad on each side."""
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(insize, size, stride, pad))


def buffer(ary, shape, dtype):
    """ary when it already has this shape and dtype (a buffer kept between calls), else a new empty array."""
    if ary is not None and ary.shape == tuple(shape) and ary.dtype == dtype:
        return ary
    return xp.empty(shape, dtype=dtype)


def padImage(data, pad, value=0):
    """data (N, C, H, W) padded by pad = (ph, pw) on each side with value; data itself when pad is zero."""
    ph, pw = pad
    if ph == 0 and pw == 0:
        return data
    n, c, h, w = data.shape
    out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=data.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = data
    return out


def cropImage(image, pad):
    """image (N, C, Hp, Wp) without its pad borders, contiguous; image itself when pad is zero."""
    ph, pw = pad
    if ph == 0 and pw == 0:
        return image
    return xp.ascontiguousarray(image[:, :, ph:image.shape[2] - ph, pw:image.shape[3] - pw])


def offsetViews(image, size, stride, outsize):
    """For each kernel offset (ki, kj) in row-major order, the strided view of image (.., Hp, Wp) that
    the offset sees at every output position: a list of fh*fw views of shape (.., OH, OW).
    Pooling on NumPy runs one elementwise pass per view; reducing a reshaped (N, C, H/s, s, W/s, s)
    view instead, even for side-by-side windows, measured 5-15x slower."""
    (fh, fw), (sh, sw), (oh, ow) = size, stride, outsize
    return [image[..., ki:ki + sh * (oh - 1) + 1:sh, kj:kj + sw * (ow - 1) + 1:sw]
            for ki in range(fh) for kj in range(fw)]


# CUDA helper for the kernels that gather onto input pixels: the output positions o whose window
# [o*stride, o*stride + size) covers padded coordinate pos are lo..hi (empty when lo > hi)
coverPreamble = """
__device__ void coverRange(int pos, int size, int stride, int outsize, int* lo, int* hi) {
    *lo = pos >= size ? (pos - size) / stride + 1 : 0;
    *hi = min(pos / stride, outsize - 1);
}
"""

_im2colKernel = ElementwiseKernel(
    "raw T x, int32 N, int32 C, int32 H, int32 W, int32 OH, int32 OW, int32 fh, int32 fw, "
    "int32 sh, int32 sw, int32 ph, int32 pw",
    "T col",
    """
    int ow = i % OW; ptrdiff_t rest = i / OW;
    int oh = rest % OH; rest /= OH;
    int b = rest % N; rest /= N;
    int kj = rest % fw; rest /= fw;
    int ki = rest % fh;
    int c = rest / fh;
    int y = oh * sh - ph + ki, x0 = ow * sw - pw + kj;
    col = (y >= 0 && y < H && x0 >= 0 && x0 < W) ? x[((ptrdiff_t)(b * C + c) * H + y) * W + x0] : (T)0;
    """,
    "macrobatch_im2col")

_col2imKernel = ElementwiseKernel(
    "raw T col, int32 N, int32 C, int32 H, int32 W, int32 OH, int32 OW, int32 fh, int32 fw, "
    "int32 sh, int32 sw, int32 ph, int32 pw",
    "T img",
    """
    int x0 = i % W + pw; ptrdiff_t rest = i / W;
    int y = rest % H + ph; rest /= H;
    int c = rest % C;
    int b = rest / C;
    int ohLo, ohHi, owLo, owHi;
    coverRange(y, fh, sh, OH, &ohLo, &ohHi);
    coverRange(x0, fw, sw, OW, &owLo, &owHi);
    T acc = (T)0;
    for (int oh = ohLo; oh <= ohHi; ++oh) {
        for (int ow = owLo; ow <= owHi; ++ow) {
            int k = (c * fh + y - oh * sh) * fw + x0 - ow * sw;
            acc += col[(((ptrdiff_t)k * N + b) * OH + oh) * OW + ow];
        }
    }
    img = acc;
    """,
    "macrobatch_col2im", preamble=coverPreamble)


def im2col(data, size, stride, pad, out=None):
    """The (C*fh*fw, N*OH*OW) column matrix of data (N, C, H, W), rows ordered (c, ki, kj) like a
    flattened (outmaps, C, fh, fw) weight, columns ordered (n, oh, ow). Written into out when its
    shape and dtype fit (a buffer kept between calls), else into a new array."""
    n, c, h, w = data.shape
    (fh, fw), (oh, ow) = size, outSize((h, w), size, stride, pad)
    out = buffer(out, (c * fh * fw, n * oh * ow), data.dtype)
    if isCuda:
        _im2colKernel(xp.ascontiguousarray(data), n, c, h, w, oh, ow, fh, fw, *stride, *pad, out)
        return out
    windows = sliding_window_view(padImage(data, pad), size, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    xp.copyto(out.reshape(c, fh, fw, n, oh, ow), windows.transpose(1, 4, 5, 0, 2, 3))
    return out


def col2im(cols, shape, size, stride, pad):
    """Sum the column matrix cols (C*fh*fw, N*OH*OW) back onto a new (N, C, H, W) image of the given
    shape: every pixel gets the sum of the entries that im2col copied it to (the adjoint of im2col)."""
    n, c, h, w = shape
    (fh, fw), (ph, pw) = size, pad
    oh, ow = outSize((h, w), size, stride, pad)
    if isCuda:
        out = xp.empty(shape, dtype=cols.dtype)
        _col2imKernel(xp.ascontiguousarray(cols), n, c, h, w, oh, ow, fh, fw, *stride, ph, pw, out)
        return out
    # Accumulating in (C, N, ..) order keeps both operands of each add in the same order: faster slices
    image = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    cols = cols.reshape(c, fh * fw, n, oh, ow)
    for k, view in enumerate(offsetViews(image, size, stride, (oh, ow))):
        view += cols[:, k]
    return xp.ascontiguousarray(image[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))
