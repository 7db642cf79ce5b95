"""AvgPool1D: the mean of each window of a (batch, maps, length) sequence."""
from .avgpoolnd import AvgPoolND
from .pool1d import Pool1D


class AvgPool1D(AvgPoolND, Pool1D):
    """Average pooling of (batch, maps, L) inputs to (batch, maps, OL), as PyTorch's avg_pool1d.

    size, stride and pad take an int; stride defaults to size (windows side by side) and pad (at most
    half the window) adds zero borders that count in the mean (count_include_pad=True).
    """
