"""What the 2D pooling modules share (Pool2D): window geometry, dtypes and input checks."""
import re

import numpy as np
import pytest

from macrobatch.engine.backend import toDevice
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.modules.avgpool2d import AvgPool2D
from macrobatch.modules.maxpool2d import MaxPool2D

pools = [MaxPool2D, AvgPool2D]


@pytest.mark.parametrize("cls", pools)
@pytest.mark.parametrize("size,outshape", [(3, (2, 4, 3, 3)), ((2, 3), (2, 4, 4, 3))])
def test_stride_defaults_to_size(cls, size, outshape):
    mod = cls(size)
    assert mod.stride == mod.size
    assert mod(toDevice(np.zeros((2, 4, 9, 10), np.float32))).shape == outshape


@pytest.mark.parametrize("cls", pools)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_and_gradient_keep_the_input_dtype(cls, dtype):
    mod = cls(2)
    assert mod(toDevice(np.zeros((1, 1, 4, 4), dtype))).dtype == dtype
    assert mod.backward(toDevice(np.ones((1, 1, 2, 2), dtype))).dtype == dtype


@pytest.mark.parametrize("cls", pools)
@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 3, 8, 8, 1)])
def test_rejects_input_that_is_not_an_image_batch_naming_the_module(cls, shape):
    with pytest.raises(ShapeError, match=rf"{cls.__name__} 'pool': expected input of shape "
                                         rf"\(batch, maps, height, width\), got {re.escape(str(shape))}"):
        cls(2, name="pool")(toDevice(np.zeros(shape, np.float32)))


@pytest.mark.parametrize("cls", pools)
def test_rejects_image_smaller_than_window(cls):
    with pytest.raises(ShapeError, match=r"\(1, 2, 2, 8\) padded by \(0, 0\) is smaller than the 3x3 window"):
        cls(3)(toDevice(np.zeros((1, 2, 2, 8), np.float32)))


@pytest.mark.parametrize("cls", pools)
def test_rejects_integer_input(cls):
    with pytest.raises(DtypeError, match="int32"):
        cls(2)(toDevice(np.zeros((1, 1, 4, 4), np.int32)))


@pytest.mark.parametrize("cls", pools)
def test_rejects_padding_over_half_the_window(cls):
    with pytest.raises(ValueError, match=r"pad \(2, 2\) must be at most half the window size \(3, 3\)"):
        cls(3, pad=2)
