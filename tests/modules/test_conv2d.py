"""What is particular to Conv2D; gradients, torch parity, blueprints and bad input for every geometry are
checked in test_convnd.py. Inputs go through toDevice and results through toHost, so on the CUDA backend
the same tests check the GPU kernels."""
import json

import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.modules.conv2d import Conv2D
from macrobatch.modules.module import buildFromBlueprint


def randn(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_conv2d_without_bias_has_only_weights():
    assert list(Conv2D(3, 4, 3, useBias=False).vars) == ["W"]


def test_dilated_conv2d_equals_conv2d_with_the_zero_stuffed_kernel():
    dilated = Conv2D(3, 2, (2, 3), dilation=(3, 2), pad=1)
    W = toHost(dilated.vars["W"].data)
    stuffed = Conv2D(3, 2, (4, 5), pad=1)
    stuffed.vars["W"].data[...] = 0
    stuffed.vars["W"].data[:, :, ::3, ::2] = toDevice(W)
    x = toDevice(randn((2, 3, 8, 7), 0))
    np.testing.assert_allclose(toHost(dilated(x)), toHost(stuffed(x)), rtol=1e-6, atol=1e-6)


def test_grouped_conv2d_equals_separate_convolutions_of_the_channel_groups():
    grouped = Conv2D(6, 4, 3, groups=2, pad=1)
    x = toDevice(randn((2, 6, 5, 5), 0))
    parts = []
    for k in range(2):
        part = Conv2D(3, 2, 3, pad=1)
        part.vars["W"].data[...] = grouped.vars["W"].data[2 * k:2 * k + 2]
        parts.append(toHost(part(x[:, 3 * k:3 * k + 3])))
    np.testing.assert_allclose(toHost(grouped(x)), np.concatenate(parts, axis=1), rtol=1e-6, atol=1e-6)


def test_conv2d_outputs_of_earlier_batches_survive_later_calls():
    mod = Conv2D(2, 3, 3)
    x1, x2 = toDevice(randn((2, 2, 5, 5), 0)), toDevice(randn((2, 2, 5, 5), 1))
    y1 = mod(x1)
    kept = toHost(y1).copy()
    mod(x2)
    mod.backward(toDevice(randn((2, 3, 3, 3), 2)))
    np.testing.assert_array_equal(toHost(y1), kept)


def test_conv2d_handles_batches_of_changing_size():
    mod = Conv2D(2, 3, 3)
    for n in (4, 1, 4):
        x = randn((n, 2, 6, 6), n)
        y = toHost(mod(toDevice(x)))
        ref = Conv2D(2, 3, 3)
        ref.vars["W"].data[...] = mod.vars["W"].data
        np.testing.assert_allclose(y, toHost(ref(toDevice(x))), rtol=1e-6)


def test_conv2d_weight_shape_and_initialisation_use_kernel_fans():
    mod = Conv2D(16, 32, (3, 5), initscheme="uniform")
    W = toHost(mod.vars["W"].data)
    assert W.shape == (32, 16, 3, 5) and mod.vars["b"].shape == (32,)
    assert np.abs(W).max() <= 1 / np.sqrt(16 * 3 * 5)
    he = toHost(Conv2D(16, 32, (3, 5)).vars["W"].data)
    assert he.std() == pytest.approx(np.sqrt(2 / (16 * 3 * 5)), rel=0.05)


def test_conv2d_rebuilds_from_a_json_blueprint_with_pair_arguments():
    mod = Conv2D(3, 4, (2, 3), stride=(1, 2), pad=(1, 0), useBias=False)
    copy = buildFromBlueprint(json.loads(json.dumps(mod.getBlueprint())))
    assert (copy.size, copy.stride, copy.pad, list(copy.vars)) == ((2, 3), (1, 2), (1, 0), ["W"])


def test_conv2d_rejects_wrong_channel_count_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"Conv2D '0': expected input of shape \(batch, 3, height, width\), "
                                         r"got \(8, 1, 28, 28\)"):
        Conv2D(3, 8, 3, name="0")(toDevice(np.zeros((8, 1, 28, 28), np.float32)))


def test_conv2d_rejects_input_that_is_not_an_image_batch():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 3, height, width\), got \(3, 28, 28\)"):
        Conv2D(3, 8, 3)(toDevice(np.zeros((3, 28, 28), np.float32)))


def test_conv2d_rejects_image_smaller_than_kernel_after_padding():
    with pytest.raises(ShapeError, match=r"\(2, 3, 4, 9\) padded by \(1, 1\) is smaller than the 7x3 window"):
        Conv2D(3, 8, (7, 3), pad=1)(toDevice(np.zeros((2, 3, 4, 9), np.float32)))


def test_conv2d_window_too_large_counts_the_dilated_span():
    with pytest.raises(ShapeError, match=r"\(2, 3, 4, 9\) padded by \(0, 0\) is smaller than the 5x3 window"):
        Conv2D(3, 8, 3, dilation=(2, 1))(toDevice(np.zeros((2, 3, 4, 9), np.float32)))


def test_conv2d_rejects_input_of_another_dtype():
    with pytest.raises(DtypeError, match="float64"):
        Conv2D(3, 2, 3)(toDevice(np.zeros((1, 3, 5, 5), np.float64)))
