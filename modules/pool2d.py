"""Pool2D: the base of the pooling modules on NCHW images."""
from .poolnd import PoolND


class Pool2D(PoolND):
    """Pooling geometry (PoolND) on (batch, maps, height, width) inputs: size, stride and pad take an
    int or an (h, w) pair."""

    nd = 2
