"""AvgPool3D: the mean of each window of a (batch, maps, depth, height, width) volume."""
from .avgpoolnd import AvgPoolND
from .pool3d import Pool3D


class AvgPool3D(AvgPoolND, Pool3D):
    """Average pooling of (batch, maps, D, H, W) inputs to (batch, maps, OD, OH, OW), as PyTorch's avg_pool3d.

    size, stride and pad take an int or a (d, h, w) triple; stride defaults to size (windows side by side) and pad (at
    most half the window) adds zero borders, which count in the mean unless countIncludePad=False
    (torch's count_include_pad); ceilMode rounds the output size up (torch's ceil_mode; see AvgPoolND).
    """
