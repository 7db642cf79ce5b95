"""Conv2D and the im2col lowering it runs on. Inputs go through toDevice and results through toHost,
so on the CUDA backend the same tests check the GPU kernels."""
import json

import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.engine.im2col import col2im, im2col
from macrobatch.modules.conv2d import Conv2D
from macrobatch.modules.module import buildFromBlueprint

configs = {
    "3x3": dict(size=3),
    "stride2-pad1": dict(size=3, stride=2, pad=1),
    "non-square": dict(size=(2, 3), stride=(1, 2), pad=(1, 0)),
    "1x1": dict(size=1),
    "no-bias": dict(size=3, pad=1, useBias=False),
}


def randn(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_conv2d_input_and_parameter_gradients_match_finite_differences(cfg):
    mod = Conv2D(3, 4, **cfg).cast(np.float64)
    if "b" in mod.vars:
        mod.vars["b"].data[...] = toDevice(randn(4, 1, np.float64))
    checkModuleGrads(mod, randn((2, 3, 6, 5), 0, np.float64))


def test_conv2d_without_bias_has_only_weights():
    assert list(Conv2D(3, 4, 3, useBias=False).vars) == ["W"]


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_conv2d_matches_torch_forward_and_backward(cfg):
    torch = pytest.importorskip("torch")
    mod = Conv2D(3, 5, **cfg)
    if "b" in mod.vars:
        mod.vars["b"].data[...] = toDevice(randn(5, 1))
    x = randn((4, 3, 9, 8), 2)
    y = toHost(mod(toDevice(x)))
    tw = torch.from_numpy(toHost(mod.vars["W"].data)).requires_grad_()
    tb = torch.from_numpy(toHost(mod.vars["b"].data)).requires_grad_() if "b" in mod.vars else None
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=mod.stride, padding=mod.pad)
    g = randn(ty.shape, 3)
    ty.backward(torch.from_numpy(g))
    gx = toHost(mod.backward(toDevice(g)))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), tw.grad.numpy(), rtol=1e-5, atol=1e-4)
    if tb is not None:
        np.testing.assert_allclose(toHost(mod.vars["b"].grad), tb.grad.numpy(), rtol=1e-5, atol=1e-4)


def test_conv2d_parameter_gradients_accumulate_and_skip_input_gradient_when_not_needed():
    mod = Conv2D(2, 3, 3, pad=1)
    x, g = toDevice(randn((2, 2, 5, 5), 0)), toDevice(randn((2, 3, 5, 5), 1))
    mod(x)
    assert mod.backward(g, updGrad=False) is None
    once = toHost(mod.vars["W"].grad).copy(), toHost(mod.vars["b"].grad).copy()
    mod(x)
    mod.backward(g)
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), 2 * once[0], rtol=1e-6)
    np.testing.assert_allclose(toHost(mod.vars["b"].grad), 2 * once[1], rtol=1e-6)


def test_conv2d_rereads_a_gradient_array_refilled_between_backward_passes():
    mod = Conv2D(2, 3, 3)
    x, g = toDevice(randn((2, 2, 5, 5), 0)), toDevice(randn((2, 3, 3, 3), 1))
    mod(x)
    mod.backward(g)
    first = toHost(mod.vars["W"].grad).copy()
    mod.zeroGradParams()
    g *= 2  # the same array with new values, as a cost reusing its gradient buffer would pass
    mod(x)
    gx = toHost(mod.backward(g))
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), 2 * first, rtol=1e-6)
    mod(x)
    np.testing.assert_allclose(toHost(mod.backward(g)), gx, rtol=1e-6)


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


def test_im2col_and_col2im_are_adjoint():
    x = randn((2, 3, 7, 6), 0, np.float64)
    cols = im2col(toDevice(x), (3, 2), (2, 1), (1, 1))
    c = randn(cols.shape, 1, np.float64)
    back = toHost(col2im(toDevice(c), x.shape, (3, 2), (2, 1), (1, 1)))
    np.testing.assert_allclose(np.vdot(toHost(cols), c), np.vdot(x, back), rtol=1e-12)


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


def test_conv2d_rejects_input_of_another_dtype():
    with pytest.raises(DtypeError, match="float64"):
        Conv2D(3, 2, 3)(toDevice(np.zeros((1, 3, 5, 5), np.float64)))


@pytest.mark.parametrize("arg", [dict(size=0), dict(size=(3,)), dict(size=3, stride=(1, 0)), dict(size=3, pad=-1),
                                 dict(size=2.5), dict(size=True)])
def test_conv2d_rejects_bad_geometry_arguments(arg):
    with pytest.raises(ValueError, match="must be an int or an \\(h, w\\) pair"):
        Conv2D(3, 2, **arg)
