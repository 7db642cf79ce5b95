"""MaxPool3D: the maximum of each window of a (batch, maps, depth, height, width) volume."""
from .maxpoolnd import MaxPoolND
from .pool3d import Pool3D


class MaxPool3D(MaxPoolND, Pool3D):
    """Max pooling of (batch, maps, D, H, W) inputs to (batch, maps, OD, OH, OW), as PyTorch's max_pool3d.

    size, stride and pad take an int or a (d, h, w) triple; stride defaults to size (windows side by
    side) and pad (at most half the window) adds -inf borders. The gradient goes to the first maximum
    of each window (see MaxPoolND).
    """
