"""Conv3D: 3D convolution, a ConvND over 3 spatial dims."""
from .convnd import ConvND


class Conv3D(ConvND):
    """Convolution of (batch, inmaps, D, H, W) volumes; W is (outmaps, inmaps/groups, *size) like torch's Conv3d."""

    nd = 3
