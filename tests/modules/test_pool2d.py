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


@pytest.mark.parametrize("ceilMode", [False, True], ids=["floor", "ceil"])
def test_output_sizes_follow_torch_including_the_ceil_mode_rule_for_the_last_window(ceilMode):
    # ceil mode drops a last window that would start in the right padding: stride 4 over size 2 with pad 1
    # hits that rule on several lengths
    torch = pytest.importorskip("torch")
    for n, k, s, p, d in [(n, k, s, p, d) for n in range(3, 12) for k, s, p, d in
                          [(2, 2, 0, 1), (2, 4, 1, 1), (3, 2, 1, 1), (3, 3, 1, 2), (2, 1, 0, 3), (4, 3, 2, 1)]]:
        if n + 2 * p < d * (k - 1) + 1:
            continue
        expected = torch.nn.functional.max_pool2d(torch.zeros(1, 1, n, n + 1), k, s, p, d, ceil_mode=ceilMode).shape
        assert MaxPool2D(k, s, p, dilation=d, ceilMode=ceilMode).outShape((1, 1, n, n + 1)) == tuple(expected)
        if d == 1:
            expected = torch.nn.functional.avg_pool2d(torch.zeros(1, 1, n, n + 1), k, s, p, ceil_mode=ceilMode).shape
            assert AvgPool2D(k, s, p, ceilMode=ceilMode).outShape((1, 1, n, n + 1)) == tuple(expected)


@pytest.mark.parametrize("cls", pools)
def test_rejects_a_ceil_mode_that_is_not_a_bool(cls):
    with pytest.raises(ValueError, match="ceilMode must be True or False, got 1"):
        cls(2, ceilMode=1)


def test_avgpool_rejects_a_count_include_pad_that_is_not_a_bool():
    with pytest.raises(ValueError, match="countIncludePad must be True or False, got 'no'"):
        AvgPool2D(2, countIncludePad="no")


def test_maxpool_rejects_dilation_below_one_and_an_input_smaller_than_the_dilated_window():
    with pytest.raises(ValueError, match=r"dilation must be an int or an \(h, w\) pair of ints >= 1, got 0"):
        MaxPool2D(2, dilation=0)
    with pytest.raises(ShapeError, match=r"\(1, 2, 4, 8\) padded by \(0, 0\) is smaller than the 5x5 window"):
        MaxPool2D(3, dilation=2)(toDevice(np.zeros((1, 2, 4, 8), np.float32)))
