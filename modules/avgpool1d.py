"""AvgPool1D: the mean of each window of a (batch, maps, length) sequence."""
from .avgpoolnd import AvgPoolND
from .pool1d import Pool1D


class AvgPool1D(AvgPoolND, Pool1D):
    """Average pooling of (batch, maps, L) inputs to (batch, maps, OL), as PyTorch's avg_pool1d.

    size, stride and pad take an int; stride defaults to size (windows side by side) and pad (at
    most half the window) adds zero borders, which count in the mean unless countIncludePad=False
    (torch's count_include_pad); ceilMode rounds the output size up (torch's ceil_mode; see AvgPoolND).
    """
