"""Upsample2D: enlarge NCHW images by an integer factor, by nearest or bilinear interpolation."""
import numpy

from ..engine.backend import toDevice, xp
from ..engine.gemm import matmul
from ..engine.im2col import pair
from .module import Module


def bilinearMatrix(insize, factor):
    """The (insize * factor, insize) host matrix of linear interpolation along one axis, with
    align_corners=False: output i samples input coordinate (i + 0.5) / factor - 0.5, clamped to the
    first and last input, as PyTorch computes it for a given scale factor."""
    outsize = insize * factor
    src = numpy.maximum((numpy.arange(outsize) + 0.5) / factor - 0.5, 0.0)
    lo = numpy.minimum(src.astype(numpy.int64), insize - 1)
    hi = numpy.minimum(lo + 1, insize - 1)
    frac = src - lo
    matrix = numpy.zeros((outsize, insize))
    rows = numpy.arange(outsize)
    numpy.add.at(matrix, (rows, lo), 1 - frac)
    numpy.add.at(matrix, (rows, hi), frac)
    return matrix


class Upsample2D(Module):
    """Upsampling of (batch, maps, H, W) inputs to (batch, maps, H * sh, W * sw), as PyTorch's
    interpolate(scale_factor=scale).

    scale: an int or an (sh, sw) pair of ints >= 1. mode: "nearest" repeats each pixel sh x sw times;
    "bilinear" interpolates with align_corners=False (PyTorch's default: pixel centres line up, and
    outputs beyond the outer centres take the edge value). Bilinear interpolation is separable, so both
    directions are GEMMs with small (H * sh, H) and (W * sw, W) interpolation matrices, kept per input
    size; their cost grows with H and W, which suits the feature-map sizes upsampling is used at.
    """

    modes = ("nearest", "bilinear")

    def __init__(self, scale=2, mode="nearest", name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        if mode not in self.modes:
            raise ValueError(f"unknown mode {mode!r}; expected one of {list(self.modes)}")
        self.scale, self.mode = pair(scale, "scale", 1), mode
        self.matrices = {}

    def checkDataShape(self, shape):
        self.checkRank(shape, 4, "(batch, maps, height, width)")

    def copies(self, image):
        """The sh * sw strided views of an upsampled (batch, maps, H * sh, W * sw) image that each hold one
        copy of every input pixel in nearest mode. One pass per view measured 7x faster on NumPy than
        one broadcast copy into the reshaped (.., H, sh, W, sw) image, and 17x faster than its sum."""
        (sh, sw), (n, c, h, w) = self.scale, image.shape
        blocks = image.reshape(n, c, h // sh, sh, w // sw, sw)
        return [blocks[:, :, :, i, :, j] for i in range(sh) for j in range(sw)]

    def interpolation(self, insize, dtype):
        """The (Ah, Aw) interpolation matrices for an (H, W) input, on the device, built once per size."""
        key = (tuple(insize), dtype)
        if key not in self.matrices:
            self.matrices[key] = tuple(toDevice(bilinearMatrix(n, s), dtype) for n, s in zip(insize, self.scale))
        return self.matrices[key]

    def updateData(self, data):
        n, c, h, w = data.shape
        H, W = h * self.scale[0], w * self.scale[1]
        if self.mode == "nearest":
            out = xp.empty((n, c, H, W), dtype=data.dtype)
            for view in self.copies(out):
                xp.copyto(view, data)
            return out
        ah, aw = self.interpolation((h, w), data.dtype)
        rows = matmul(data.reshape(n * c * h, w), aw.T)
        return matmul(ah, rows.reshape(n * c, h, W)).reshape(n, c, H, W)

    def updateGrad(self, grad):
        n, c, h, w = self.inData.shape
        H, W = grad.shape[2:]
        if self.mode == "nearest":
            views = self.copies(grad)
            out = xp.array(views[0])
            for view in views[1:]:
                out += view
            return out
        ah, aw = self.interpolation((h, w), grad.dtype)
        rows = matmul(ah.T, grad.reshape(n * c, H, W))
        return matmul(rows.reshape(n * c * h, W), aw).reshape(n, c, h, w)
