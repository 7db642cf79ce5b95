"""AvgPool2D: the mean of each window of an NCHW image."""
from .avgpoolnd import AvgPoolND
from .pool2d import Pool2D


class AvgPool2D(AvgPoolND, Pool2D):
    """Average pooling of (batch, maps, H, W) inputs to (batch, maps, OH, OW), as PyTorch's avg_pool2d.

    size, stride and pad take an int or an (h, w) pair; stride defaults to size (windows side by side) and pad (at
    most half the window) adds zero borders, which count in the mean unless countIncludePad=False
    (torch's count_include_pad); ceilMode rounds the output size up (torch's ceil_mode; see AvgPoolND).
    """
