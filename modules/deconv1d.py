"""Deconv1D: 1D transposed convolution, a DeconvND over 1 spatial dim."""
from .deconvnd import DeconvND


class Deconv1D(DeconvND):
    """Transposed convolution of (batch, inmaps, length) sequences;
    W is (inmaps, outmaps/groups, *size) like ConvTranspose1d."""

    nd = 1
