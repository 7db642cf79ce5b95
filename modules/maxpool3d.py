"""MaxPool3D: the maximum of each window of a (batch, maps, depth, height, width) volume."""
from .maxpoolnd import MaxPoolND
from .pool3d import Pool3D


class MaxPool3D(MaxPoolND, Pool3D):
    """Max pooling of (batch, maps, D, H, W) inputs to (batch, maps, OD, OH, OW), as PyTorch's max_pool3d.

    size, stride, pad and dilation take an int or a (d, h, w) triple; stride defaults to size (windows
    side by side), pad (at most half the window) adds -inf borders, dilation spaces the taps of a window and ceilMode
    rounds the output size up (torch's dilation and ceil_mode). The gradient goes to the first maximum
    of each window (see MaxPoolND).
    """
