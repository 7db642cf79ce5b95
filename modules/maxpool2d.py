"""MaxPool2D: the maximum of each window of an NCHW image."""
from .maxpoolnd import MaxPoolND
from .pool2d import Pool2D


class MaxPool2D(MaxPoolND, Pool2D):
    """Max pooling of (batch, maps, H, W) inputs to (batch, maps, OH, OW), as PyTorch's max_pool2d.

    size, stride, pad and dilation take an int or an (h, w) pair; stride defaults to size (windows side by side),
    pad (at most half the window) adds -inf borders, dilation spaces the taps of a window and ceilMode
    rounds the output size up (torch's dilation and ceil_mode). The gradient goes to the first maximum
    of each window (see MaxPoolND).
    """
