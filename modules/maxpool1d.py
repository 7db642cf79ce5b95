"""MaxPool1D: the maximum of each window of a (batch, maps, length) sequence."""
from .maxpoolnd import MaxPoolND
from .pool1d import Pool1D


class MaxPool1D(MaxPoolND, Pool1D):
    """Max pooling of (batch, maps, L) inputs to (batch, maps, OL), as PyTorch's max_pool1d.

    size, stride, pad and dilation take an int; stride defaults to size (windows side by side),
    pad (at most half the window) adds -inf borders, dilation spaces the taps of a window and ceilMode
    rounds the output size up (torch's dilation and ceil_mode). The gradient goes to the first maximum
    of each window (see MaxPoolND).
    """
