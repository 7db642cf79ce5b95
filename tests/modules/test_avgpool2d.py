"""AvgPool2D. Inputs go through toDevice and results through toHost, so on the CUDA backend the same
tests check the GPU kernels."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.avgpool2d import AvgPool2D

configs = {
    "2x2": dict(size=2),
    "3x3-stride2-pad1": dict(size=3, stride=2, pad=1),
    "non-square": dict(size=(2, 3), stride=(1, 2), pad=(1, 0)),
    "overlapping": dict(size=3, stride=1),
    "gaps": dict(size=2, stride=3),
    "1x1": dict(size=1),
}


def randn(shape, seed, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_avgpool2d_gradient_matches_finite_differences(cfg):
    checkModuleGrads(AvgPool2D(**cfg), randn((2, 3, 7, 6), 0, np.float64))


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_avgpool2d_matches_torch_forward_and_backward(cfg):
    torch = pytest.importorskip("torch")
    mod = AvgPool2D(**cfg)
    x = randn((4, 3, 9, 8), 1, np.float32)
    y = toHost(mod(toDevice(x)))
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.avg_pool2d(tx, mod.size, mod.stride, mod.pad)
    g = randn(ty.shape, 2, np.float32)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(toHost(mod.backward(toDevice(g))), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_avgpool2d_counts_padded_zeros_in_the_mean():
    y = toHost(AvgPool2D(3, stride=2, pad=1)(toDevice(np.ones((1, 1, 5, 5), np.float32))))
    np.testing.assert_allclose(y[0, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]], rtol=1e-6)


def test_avgpool2d_rejects_padding_over_half_the_window():
    with pytest.raises(ValueError, match=r"pad \(1, 1\) must be at most half the window size \(1, 1\)"):
        AvgPool2D(1, pad=1)


globalConfigs = {"8x8": ((8, 8), dict(size=8)), "7x6-stride": ((7, 6), dict(size=(7, 6), stride=2)),
                 "1x1": ((1, 1), dict(size=1))}


@pytest.mark.parametrize("image,cfg", globalConfigs.values(), ids=globalConfigs.keys())
def test_avgpool2d_global_fast_path_equals_the_general_path(image, cfg, monkeypatch):
    fast, general = AvgPool2D(**cfg), AvgPool2D(**cfg)
    assert fast.coversImage(image)
    monkeypatch.setattr(general, "coversImage", lambda insize: False)
    x = toDevice(randn((4, 5) + image, 1, np.float32))
    y = toHost(fast(x))
    assert y.shape == (4, 5, 1, 1)
    np.testing.assert_allclose(y, toHost(general(x)), rtol=1e-6, atol=1e-7)
    g = toDevice(randn(y.shape, 2, np.float32))
    np.testing.assert_array_equal(toHost(fast.backward(g)), toHost(general.backward(g)))


@pytest.mark.parametrize("image,cfg", globalConfigs.values(), ids=globalConfigs.keys())
def test_avgpool2d_global_gradient_matches_finite_differences(image, cfg):
    checkModuleGrads(AvgPool2D(**cfg), randn((2, 3) + image, 0, np.float64))


@pytest.mark.parametrize("image,cfg", globalConfigs.values(), ids=globalConfigs.keys())
def test_avgpool2d_global_matches_torch_forward_and_backward(image, cfg):
    torch = pytest.importorskip("torch")
    mod = AvgPool2D(**cfg)
    x = randn((4, 3) + image, 1, np.float32)
    y = toHost(mod(toDevice(x)))
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.adaptive_avg_pool2d(tx, 1)
    g = randn(ty.shape, 2, np.float32)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(toHost(mod.backward(toDevice(g))), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_avgpool2d_padded_window_over_the_whole_image_takes_the_general_path():
    torch = pytest.importorskip("torch")
    mod = AvgPool2D(4, pad=1)
    assert not mod.coversImage((4, 4))
    x = randn((2, 3, 4, 4), 1, np.float32)
    y = toHost(mod(toDevice(x)))
    np.testing.assert_allclose(y, torch.nn.functional.avg_pool2d(torch.from_numpy(x), 4, 4, 1).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert y.shape == (2, 3, 1, 1)


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_avgpool2d_batch_split_over_threads_matches_torch(cfg, threeParts):
    torch = pytest.importorskip("torch")
    mod = AvgPool2D(**cfg)
    x = randn((5, 3, 9, 8), 1, np.float32)
    y = toHost(mod(toDevice(x)))
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.avg_pool2d(tx, mod.size, mod.stride, mod.pad)
    g = randn(ty.shape, 2, np.float32)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(toHost(mod.backward(toDevice(g))), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_avgpool2d_eval_mode_keeps_no_backward_buffers():
    mod = AvgPool2D(2)
    x = toDevice(randn((2, 3, 8, 8), 1, np.float32))
    mod.backward(toDevice(np.ones(mod(x).shape, np.float32)))
    mod.evalMode()(x)
    assert mod.buffers == {}


def test_avgpool2d_windows_tiling_the_padded_image_match_torch_and_finite_differences():
    torch = pytest.importorskip("torch")
    mod = AvgPool2D((2, 3), pad=1)
    assert mod.tiles((6, 7)) and not mod.tiles((7, 7))
    checkModuleGrads(AvgPool2D((2, 3), pad=1), randn((2, 3, 6, 7), 0, np.float64))
    x = randn((4, 3, 6, 7), 1, np.float32)
    y = toHost(mod(toDevice(x)))
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.avg_pool2d(tx, mod.size, mod.stride, mod.pad)
    g = randn(ty.shape, 2, np.float32)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(toHost(mod.backward(toDevice(g))), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


# ceil mode (the last window partial, or dropped by torch's rule) and count_include_pad=False, alone and
# together: each changes the divisor of the border windows
shapeConfigs = {
    "ceil": dict(size=2, ceilMode=True),
    "ceil-3x3-stride2-pad1": dict(size=3, stride=2, pad=1, ceilMode=True),
    "ceil-rule-drops-last": dict(size=2, stride=(4, 3), pad=1, ceilMode=True),
    "exclude-pad": dict(size=3, stride=2, pad=1, countIncludePad=False),
    "exclude-pad-non-square": dict(size=(2, 3), stride=(1, 2), pad=(1, 0), countIncludePad=False),
    "exclude-pad-ceil": dict(size=3, stride=2, pad=1, ceilMode=True, countIncludePad=False),
    "exclude-pad-ceil-overlapping": dict(size=(4, 2), stride=(3, 1), pad=(2, 1), ceilMode=True,
                                         countIncludePad=False),
}


def torchAvgPool(torch, mod):
    return lambda t: torch.nn.functional.avg_pool2d(t, mod.size, mod.stride, mod.pad, ceil_mode=mod.ceilMode,
                                                    count_include_pad=mod.countIncludePad)


@pytest.mark.parametrize("cfg", shapeConfigs.values(), ids=shapeConfigs.keys())
def test_avgpool2d_ceil_mode_and_count_include_pad_gradients_match_finite_differences(cfg):
    checkModuleGrads(AvgPool2D(**cfg), randn((2, 3, 7, 6), 0, np.float64))


@pytest.mark.parametrize("cfg", shapeConfigs.values(), ids=shapeConfigs.keys())
def test_avgpool2d_ceil_mode_and_count_include_pad_match_torch(cfg, torchParity):
    torch = pytest.importorskip("torch")
    mod = AvgPool2D(**cfg)
    torchParity(mod, randn((4, 3, 9, 8), 1, np.float32), torchAvgPool(torch, mod))


@pytest.mark.parametrize("cfg", shapeConfigs.values(), ids=shapeConfigs.keys())
def test_avgpool2d_ceil_mode_and_count_include_pad_batch_split_over_threads_match_torch(cfg, threeParts,
                                                                                        torchParity):
    torch = pytest.importorskip("torch")
    mod = AvgPool2D(**cfg)
    torchParity(mod, randn((5, 3, 9, 8), 1, np.float32), torchAvgPool(torch, mod))


def test_avgpool2d_excluding_padding_divides_by_the_input_elements_of_each_window():
    y = toHost(AvgPool2D(3, stride=2, pad=1, countIncludePad=False)(toDevice(np.ones((1, 1, 5, 5), np.float32))))
    np.testing.assert_allclose(y[0, 0], np.ones((3, 3)), rtol=1e-6)


def test_avgpool2d_ceil_mode_and_count_include_pad_rebuild_from_the_file(roundTrip):
    loaded = roundTrip(AvgPool2D(3, stride=2, pad=1, ceilMode=True, countIncludePad=False, name="pool"),
                       randn((2, 3, 8, 9), 0, np.float32))
    assert (loaded.ceilMode, loaded.countIncludePad) == (True, False)
