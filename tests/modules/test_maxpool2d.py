"""MaxPool2D. Inputs go through toDevice and results through toHost, so on the CUDA backend the same
tests check the GPU kernels. Random inputs are tie-free, so the max of each window is unique."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.maxpool2d import MaxPool2D

configs = {
    "2x2": dict(size=2),
    "3x3-stride2-pad1": dict(size=3, stride=2, pad=1),
    "non-square": dict(size=(2, 3), stride=(1, 2), pad=(1, 0)),
    "overlapping": dict(size=3, stride=1),
    "gaps": dict(size=2, stride=3),
    "1x1": dict(size=1),
}


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool2d_gradient_matches_finite_differences(cfg, distinct):
    checkModuleGrads(MaxPool2D(**cfg), distinct((2, 3, 7, 6), 0, np.float64))


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool2d_matches_torch_forward_and_backward(cfg, distinct):
    torch = pytest.importorskip("torch")
    mod = MaxPool2D(**cfg)
    x = distinct((4, 3, 9, 8), 1, np.float32)
    y = toHost(mod(toDevice(x)))
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.max_pool2d(tx, mod.size, mod.stride, mod.pad)
    g = np.random.default_rng(2).standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_allclose(toHost(mod.backward(toDevice(g))), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_maxpool2d_routes_gradient_to_first_maximum_on_ties():
    mod = MaxPool2D(2)
    mod(toDevice(np.ones((1, 1, 4, 4), np.float32)))
    gx = toHost(mod.backward(toDevice(np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2))))
    expected = np.zeros((4, 4), np.float32)
    expected[::2, ::2] = [[1, 2], [3, 4]]
    np.testing.assert_array_equal(gx[0, 0], expected)


def test_maxpool2d_padding_never_wins_the_max():
    x = -1 - np.random.default_rng(0).random((2, 2, 5, 5)).astype(np.float32)
    y = toHost(MaxPool2D(3, stride=2, pad=1)(toDevice(x)))
    assert y.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(y[:, :, 0, 0], x[:, :, :2, :2].max(axis=(2, 3)))
    assert (y < -1).all()


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool2d_nan_wins_its_window_and_takes_the_gradient_as_torch(cfg, train, distinct, torchParity):
    # a NaN is the max of every window holding it (the last one of several, where torch routes the
    # gradient), so the output keeps it on both backends and the check for NaN cannot miss it
    torch = pytest.importorskip("torch")
    x = distinct((2, 3, 9, 8), 1, np.float32)
    x[0, 0, 2, 3] = np.nan
    x[0, 1, 3:6, 3:6] = np.nan  # several NaNs in one window
    x[1, 2, 0, 0] = x[1, 2, 8, 7] = np.nan  # at the corners, in padded windows
    mod = MaxPool2D(**cfg)
    mod.train = train
    y = torchParity(mod, x, lambda t: torch.nn.functional.max_pool2d(t, mod.size, mod.stride, mod.pad))
    assert np.isnan(y).any()  # torchParity compares NaN with NaN as equal


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool2d_nan_gradient_reaches_every_input_of_its_window(cfg, distinct):
    # the gradient is routed through a 0/1 mask on both backends, so a NaN gradient is never dropped: it
    # reaches every input of its window (exactly where average pooling's backward spreads it; torch's
    # max pooling only its max), and every other input gradient is torch's
    torch = pytest.importorskip("torch")
    x = distinct((2, 3, 9, 8), 1, np.float32)
    mod = MaxPool2D(**cfg)
    y = mod(toDevice(x))
    g = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    g[0, 0, 1, 1] = g[1, 2, 0, :] = np.nan
    gx = toHost(mod.backward(toDevice(g)))
    tx = torch.from_numpy(x).requires_grad_()
    torch.nn.functional.max_pool2d(tx, mod.size, mod.stride, mod.pad).backward(torch.from_numpy(g))
    spread = torch.zeros(x.shape, requires_grad=True)
    torch.nn.functional.avg_pool2d(spread, mod.size, mod.stride, mod.pad).backward(torch.from_numpy(g))
    windows = np.isnan(spread.grad.numpy())
    np.testing.assert_array_equal(np.isnan(gx), windows)
    np.testing.assert_allclose(gx[~windows], tx.grad.numpy()[~windows], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool2d_eval_mode_gives_the_train_mode_output_and_keeps_no_indices(cfg, distinct):
    x = toDevice(distinct((4, 3, 9, 8), 1, np.float32))
    train, infer = MaxPool2D(**cfg), MaxPool2D(**cfg)
    y = toHost(train(x))
    infer(x)  # a train-mode call first: its indices and buffers must not outlive the switch to eval
    infer.evalMode()
    np.testing.assert_array_equal(toHost(infer(x)), y)
    assert infer.idx is None and infer.buffers == {}


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool2d_eval_mode_backward_equals_train_mode_backward(cfg, distinct):
    x = toDevice(distinct((4, 3, 9, 8), 1, np.float32))
    train, infer = MaxPool2D(**cfg), MaxPool2D(**cfg).evalMode()
    g = toDevice(np.random.default_rng(2).standard_normal(train(x).shape).astype(np.float32))
    infer(x)
    np.testing.assert_array_equal(toHost(infer.backward(g)), toHost(train.backward(g)))


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool2d_eval_mode_gradient_matches_finite_differences(cfg, distinct):
    checkModuleGrads(MaxPool2D(**cfg).evalMode(), distinct((2, 3, 7, 6), 0, np.float64))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool2d_batch_split_over_threads_matches_torch_with_ties(cfg, train, threeParts, distinct):
    torch = pytest.importorskip("torch")
    x = distinct((5, 3, 9, 8), 1, np.float32)
    x[1, :, :4] = 0.5  # ties inside the split parts too
    mod = MaxPool2D(**cfg)
    mod.train = train
    y = toHost(mod(toDevice(x)))
    g = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    gx = toHost(mod.backward(toDevice(g)))
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.max_pool2d(tx, mod.size, mod.stride, mod.pad)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_maxpool2d_reused_buffers_leak_nothing_between_calls(distinct):
    mod = MaxPool2D(2)
    first = distinct((1, 1, 4, 4), 0, np.float32)
    y1 = mod(toDevice(first))
    kept = toHost(y1).copy()
    mod(toDevice(np.ones((1, 1, 4, 4), np.float32)))  # all ties: every index must be reset to the first
    gx = toHost(mod.backward(toDevice(np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2))))
    expected = np.zeros((4, 4), np.float32)
    expected[::2, ::2] = [[1, 2], [3, 4]]
    np.testing.assert_array_equal(gx[0, 0], expected)
    np.testing.assert_array_equal(toHost(y1), kept)  # an output handed out is never written again


def test_maxpool2d_windows_tiling_the_padded_image_match_torch_and_finite_differences(distinct):
    torch = pytest.importorskip("torch")
    mod = MaxPool2D((2, 3), pad=1)
    assert mod.tiles((6, 7)) and not mod.tiles((7, 7))
    checkModuleGrads(MaxPool2D((2, 3), pad=1), distinct((2, 3, 6, 7), 0, np.float64))
    x = distinct((4, 3, 6, 7), 1, np.float32)
    y = toHost(mod(toDevice(x)))
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.max_pool2d(tx, mod.size, mod.stride, mod.pad)
    g = np.random.default_rng(2).standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_allclose(toHost(mod.backward(toDevice(g))), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


# ceil mode (with the last window partial, or dropped by torch's rule where it would start in the right
# padding) and dilation, alone and together
shapeConfigs = {
    "ceil": dict(size=2, ceilMode=True),
    "ceil-3x3-stride2-pad1": dict(size=3, stride=2, pad=1, ceilMode=True),
    "ceil-rule-drops-last": dict(size=2, stride=(4, 3), pad=1, ceilMode=True),
    "dilation2": dict(size=2, stride=1, dilation=2),
    "dilation-non-square": dict(size=(3, 2), stride=(2, 1), pad=1, dilation=(2, 3)),
    "dilation-side-by-side": dict(size=2, dilation=2),
    "dilation-ceil": dict(size=3, stride=2, pad=1, dilation=2, ceilMode=True),
}


def torchMaxPool(torch, mod):
    return lambda t: torch.nn.functional.max_pool2d(t, mod.size, mod.stride, mod.pad, mod.dilation,
                                                    ceil_mode=mod.ceilMode)


@pytest.mark.parametrize("cfg", shapeConfigs.values(), ids=shapeConfigs.keys())
def test_maxpool2d_ceil_mode_and_dilation_gradients_match_finite_differences_in_train_and_eval_mode(
        cfg, distinct, gradsInBothModes):
    gradsInBothModes(MaxPool2D(**cfg), distinct((2, 3, 7, 6), 0, np.float64))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("cfg", shapeConfigs.values(), ids=shapeConfigs.keys())
def test_maxpool2d_ceil_mode_and_dilation_match_torch_with_ties_and_nan(cfg, train, distinct, torchParity):
    torch = pytest.importorskip("torch")
    x = distinct((4, 3, 9, 8), 1, np.float32)
    x[1, :, :4] = 0.5  # ties
    x[2, 1, 8, 7] = np.nan  # in the last, partial window of ceil mode
    mod = MaxPool2D(**cfg)
    mod.train = train
    torchParity(mod, x, torchMaxPool(torch, mod))


@pytest.mark.parametrize("cfg", shapeConfigs.values(), ids=shapeConfigs.keys())
def test_maxpool2d_ceil_mode_and_dilation_batch_split_over_threads_match_torch(cfg, threeParts, distinct,
                                                                                 torchParity):
    torch = pytest.importorskip("torch")
    mod = MaxPool2D(**cfg)
    torchParity(mod, distinct((5, 3, 9, 8), 1, np.float32), torchMaxPool(torch, mod))


def test_maxpool2d_dilation_and_ceil_mode_rebuild_from_the_file(distinct, roundTrip):
    loaded = roundTrip(MaxPool2D(3, stride=2, pad=1, dilation=(2, 1), ceilMode=True, name="pool"),
                       distinct((2, 3, 8, 9), 0, np.float32))
    assert (loaded.dilation, loaded.ceilMode) == ((2, 1), True)
