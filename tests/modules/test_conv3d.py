"""What is particular to Conv3D; gradients, torch parity, blueprints and bad input for every geometry are
checked in test_convnd.py."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.conv2d import Conv2D
from macrobatch.modules.conv3d import Conv3D


def test_conv3d_with_a_flat_kernel_equals_conv2d_on_every_depth_slice():
    flat = Conv3D(3, 4, (1, 3, 2), stride=(1, 2, 1), pad=(0, 1, 1), dilation=(1, 1, 2), groups=1)
    plane = Conv2D(3, 4, (3, 2), stride=(2, 1), pad=(1, 1), dilation=(1, 2))
    plane.vars["W"].data[...] = flat.vars["W"].data[:, :, 0]
    plane.vars["b"].data[...] = toDevice(np.arange(4), plane.dtype)
    flat.vars["b"].data[...] = toDevice(np.arange(4), flat.dtype)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 7, 6)).astype(np.float32)
    y = toHost(flat(toDevice(x)))
    for d in range(4):
        np.testing.assert_allclose(y[:, :, d], toHost(plane(toDevice(x[:, :, d]))), rtol=1e-6, atol=1e-6)


def test_conv3d_names_the_volume_layout_in_shape_errors():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 2, depth, height, width\), "
                                         r"got \(2, 6, 6\)"):
        Conv3D(2, 2, 3)(toDevice(np.zeros((2, 6, 6), np.float32)))


def test_conv3d_rejects_a_volume_smaller_than_the_kernel():
    with pytest.raises(ShapeError, match=r"\(1, 2, 6, 2, 6\) padded by \(0, 0, 0\) is smaller than the 3x3x3 window"):
        Conv3D(2, 2, 3)(toDevice(np.zeros((1, 2, 6, 2, 6), np.float32)))
