"""What is particular to Conv1D; gradients, torch parity, blueprints and bad input for every geometry are
checked in test_convnd.py."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.conv1d import Conv1D


def test_conv1d_output_sees_exactly_the_dilated_strided_taps():
    # output t of a kernel of size 3, stride 2, pad 1, dilation 3 reads padded inputs 2t + 3j, j = 0, 1, 2
    mod = Conv1D(1, 1, 3, stride=2, pad=1, dilation=3, useBias=False)
    mod.vars["W"].data[...] = 1
    x = toDevice(np.zeros((1, 1, 12), np.float32))
    y = mod(x)
    assert y.shape == (1, 1, 4)  # (12 + 2 - 7) // 2 + 1
    for t in range(4):
        g = np.zeros(y.shape, np.float32)
        g[0, 0, t] = 1
        seen = np.flatnonzero(toHost(mod.backward(toDevice(g)))[0, 0])
        assert seen.tolist() == [p - 1 for p in (2 * t, 2 * t + 3, 2 * t + 6) if 0 <= p - 1 < 12]


def test_conv1d_names_the_sequence_layout_in_shape_errors():
    with pytest.raises(ShapeError, match=r"Conv1D: expected input of shape \(batch, 2, length\), got \(4, 2, 3, 3\)"):
        Conv1D(2, 2, 3)(toDevice(np.zeros((4, 2, 3, 3), np.float32)))


def test_conv1d_rejects_a_sequence_shorter_than_the_dilated_kernel():
    with pytest.raises(ShapeError, match=r"\(1, 2, 6\) padded by \(1,\) is smaller than the 9 window"):
        Conv1D(2, 2, 5, pad=1, dilation=2)(toDevice(np.zeros((1, 2, 6), np.float32)))
