"""BatchNorm3D: batch normalisation of (batch, maps, depth, height, width) volumes."""
from .batchnorm import BatchNorm


class BatchNorm3D(BatchNorm):
    """BatchNorm on (batch, maps, depth, height, width) inputs: each map is normalised with statistics
    over the batch and the three spatial axes, as PyTorch's BatchNorm3d. Arguments, parameters, running
    statistics, train/eval behaviour and precision (float32 statistics for float16 data) are those of
    BatchNorm."""

    ranks = (5,)
    layout = "(batch, {maps}, depth, height, width)"
