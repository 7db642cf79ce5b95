"""Deconv2D: 2D transposed convolution, a DeconvND over 2 spatial dims."""
from .deconvnd import DeconvND


class Deconv2D(DeconvND):
    """Transposed convolution of (batch, inmaps, H, W) images;
    W is (inmaps, outmaps/groups, *size) like ConvTranspose2d."""

    nd = 2
