"""Deconv3D: 3D transposed convolution, a DeconvND over 3 spatial dims."""
from .deconvnd import DeconvND


class Deconv3D(DeconvND):
    """Transposed convolution of (batch, inmaps, D, H, W) volumes;
    W is (inmaps, outmaps/groups, *size) like ConvTranspose3d."""

    nd = 3
