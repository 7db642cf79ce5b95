"""What is particular to Deconv1D; gradients, torch parity, blueprints and bad input for every geometry
are checked in test_convnd.py."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.deconv1d import Deconv1D


@pytest.mark.parametrize("length, args, expected", [
    (5, dict(size=3), 7),
    (5, dict(size=4, stride=2, pad=1), 10),
    (5, dict(size=3, stride=3, pad=1, outPad=2), 15),
    (4, dict(size=3, dilation=3, pad=2), 6),
])
def test_deconv1d_output_length_follows_the_transposed_formula(length, args, expected):
    mod = Deconv1D(2, 3, **args)
    assert mod(toDevice(np.zeros((1, 2, length), np.float32))).shape == (1, 3, expected)


def test_deconv1d_rejects_outpad_not_smaller_than_stride_or_dilation():
    with pytest.raises(ValueError, match=r"outPad must be smaller than stride \(2,\) or dilation \(3,\) \(the "
                                         r"larger of the two, per axis\), got \(3,\)"):
        Deconv1D(2, 3, 3, stride=2, dilation=3, outPad=3)


def test_deconv1d_takes_outpad_below_the_dilation_as_torch_does():
    assert Deconv1D(2, 3, 3, stride=1, dilation=3, outPad=2)(toDevice(np.zeros((1, 2, 4), np.float32))).shape == (1, 3, 12)


def test_deconv1d_rejects_input_whose_output_would_be_empty():
    with pytest.raises(ShapeError, match=r"input of shape \(1, 2, 1\) gives an empty output of size \(-1,\)"):
        Deconv1D(2, 3, 1, pad=1)(toDevice(np.zeros((1, 2, 1), np.float32)))


def test_deconv1d_names_the_sequence_layout_in_shape_errors():
    with pytest.raises(ShapeError, match=r"Deconv1D: expected input of shape \(batch, 2, length\), got \(1, 3, 5\)"):
        Deconv1D(2, 3, 3)(toDevice(np.zeros((1, 3, 5), np.float32)))
