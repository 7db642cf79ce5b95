"""BatchNorm1D: batch normalisation of (batch, maps) features and (batch, maps, length) sequences."""
from .batchnorm import BatchNorm


class BatchNorm1D(BatchNorm):
    """BatchNorm on (batch, maps) or (batch, maps, length) inputs: each map is normalised with statistics
    over the batch (and the length), as PyTorch's BatchNorm1d. Arguments, parameters, running statistics,
    train/eval behaviour and precision (float32 statistics for float16 data) are those of BatchNorm."""

    ranks = (2, 3)
    layout = "(batch, {maps}) or (batch, {maps}, length)"
