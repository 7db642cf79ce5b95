"""Conv1D: 1D convolution, a ConvND over 1 spatial dim."""
from .convnd import ConvND


class Conv1D(ConvND):
    """Convolution of (batch, inmaps, length) sequences; W is (outmaps, inmaps/groups, *size) like torch's Conv1d."""

    nd = 1
