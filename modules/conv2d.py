"""Conv2D: 2D convolution, a ConvND over 2 spatial dims."""
from .convnd import ConvND


class Conv2D(ConvND):
    """Convolution of (batch, inmaps, H, W) images; W is (outmaps, inmaps/groups, *size) like torch's Conv2d."""

    nd = 2
