"""Pool1D: the base of the pooling modules on (batch, maps, length) sequences."""
from .poolnd import PoolND


class Pool1D(PoolND):
    """Pooling geometry (PoolND) on (batch, maps, length) inputs: size, stride and pad take an int."""

    nd = 1
