"""InstanceNorm2D: normalisation of each map of each image on its own."""
from .groupnorm import GroupNorm


class InstanceNorm2D(GroupNorm):
    """y = (x - mean) / sqrt(var + epsilon) * scale + bias on (batch, maps, height, width) inputs, the
    mean and (biased) variance taken over the pixels of each map of each sample, as PyTorch's
    InstanceNorm2d: GroupNorm with one group per map. affine (off by default, as in PyTorch): train
    ``scale`` (init 1) and ``bias`` (init 0), one per map. No running statistics are kept (PyTorch's
    track_running_stats=False), so train and eval mode compute the same. Precision: GroupNorm's.
    """

    rank = 4
    layout = "(batch, {maps}, height, width)"

    def __init__(self, maps, epsilon=1e-5, affine=False, name=None):
        super().__init__(maps, maps, epsilon, affine, name)
        self.registerBlueprint(locals())
