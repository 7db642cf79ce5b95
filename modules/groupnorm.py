"""GroupNorm: normalisation of each sample over groups of its maps."""
import math

from ..engine.errors import ShapeError
from .layernorm import LayerNorm


class GroupNorm(LayerNorm):
    """y = (x - mean) / sqrt(var + epsilon) * scale + bias on (batch, maps, ...) inputs, the mean and
    (biased) variance taken per sample over each of ``groups`` groups of maps/groups consecutive maps and
    all their positions, as PyTorch's GroupNorm(groups, maps). affine: train ``scale`` (init 1) and
    ``bias`` (init 0), one per map. Train and eval mode compute the same (no running statistics).
    The computation is LayerNorm's on the (batch, groups, maps/groups, positions) view, with LayerNorm's
    parameters of normalizedShape (maps,) and its precision (float32 statistics for float16 data).
    Subclasses may fix the input ``rank`` and name its axes in ``layout``.
    """

    rank = None  # any rank from 2
    layout = "(batch, {maps}, ...)"

    def __init__(self, groups, maps, epsilon=1e-5, affine=True, name=None):
        super().__init__(maps, epsilon, affine, name)
        self.registerBlueprint(locals())
        if groups < 1 or maps % groups:
            raise ValueError(f"{self.describe()}: maps ({maps}) must be a multiple of groups ({groups})")
        self.numGroups, self.maps = groups, maps

    def checkDataShape(self, shape):
        if len(shape) < 2 or shape[1] != self.maps or self.rank not in (None, len(shape)):
            raise ShapeError(f"{self.describe()}: expected input of shape {self.layout.format(maps=self.maps)}, "
                             f"got {tuple(shape)}")

    def groups(self, shape):
        return shape[0], self.numGroups, self.maps // self.numGroups, math.prod(shape[2:])
