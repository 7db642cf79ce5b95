"""BatchNorm2D: batch normalisation of NCHW images."""
from .batchnorm import BatchNorm


class BatchNorm2D(BatchNorm):
    """BatchNorm on (batch, maps, height, width) inputs: each map is normalised with statistics over
    the batch and both spatial axes (0, 2, 3), as PyTorch's BatchNorm2d. Arguments, parameters, running
    statistics, train/eval behaviour and precision (float32 statistics for float16 data) are those of
    BatchNorm."""

    ranks = (4,)
    layout = "(batch, {maps}, height, width)"
