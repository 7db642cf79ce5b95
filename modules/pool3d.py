"""Pool3D: the base of the pooling modules on (batch, maps, depth, height, width) volumes."""
from .poolnd import PoolND


class Pool3D(PoolND):
    """Pooling geometry (PoolND) on (batch, maps, depth, height, width) inputs: size, stride and pad
    take an int or a (d, h, w) triple."""

    nd = 3
