import numpy as np
import pytest

from macrobatch.engine import setSeed
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.gradcheck import checkModuleGrads, numericGrad
from macrobatch.modules.dropout import Dropout


def test_dropout_eval_mode_is_the_identity():
    x = toDevice(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32))
    mod = Dropout(0.5).evalMode()
    assert mod(x) is x
    g = toDevice(np.ones((4, 5), np.float32))
    assert mod.backward(g) is g


def test_dropout_eval_mode_gradients_match_finite_differences():
    checkModuleGrads(Dropout(0.3).evalMode(), np.random.default_rng(0).standard_normal((3, 4)))


def test_dropout_train_mode_gradients_match_finite_differences_for_a_fixed_mask():
    mod = Dropout(0.4)
    x = toDevice(np.random.default_rng(0).standard_normal((3, 5)))
    weights = toDevice(np.random.default_rng(1).standard_normal((3, 5)))

    def loss():
        setSeed(9)  # the same mask on every call
        return (mod(x) * weights).sum()

    loss()
    analytic = toHost(mod.backward(weights))
    np.testing.assert_allclose(analytic, numericGrad(loss, x), rtol=1e-6, atol=1e-8)


def test_dropout_train_mode_zeroes_about_p_and_keeps_the_mean():
    y = toHost(Dropout(0.3)(toDevice(np.ones((200, 500), np.float32))))
    assert abs((y == 0).mean() - 0.3) < 0.005
    assert abs(y.mean() - 1) < 0.01
    np.testing.assert_allclose(np.unique(y), [0, 1 / 0.7], rtol=1e-6)


def test_dropout_same_seed_gives_the_same_mask():
    x = toDevice(np.ones((50, 40), np.float32))
    mod = Dropout(0.5)
    setSeed(5)
    first = toHost(mod(x))
    setSeed(5)
    np.testing.assert_array_equal(toHost(mod(x)), first)
    assert not np.array_equal(toHost(mod(x)), first)


def test_dropout_backward_applies_the_forward_mask():
    x = np.random.default_rng(0).uniform(1, 2, (30, 20)).astype(np.float32)
    mod = Dropout(0.5)
    y = toHost(mod(toDevice(x)))
    gx = toHost(mod.backward(toDevice(np.ones_like(x))))
    np.testing.assert_array_equal(gx == 0, y == 0)
    np.testing.assert_allclose(gx[y != 0], 2.0)


def test_dropout_with_its_mask_matches_torch_and_keeps_nan_where_it_drops():
    # torch's dropout multiplies by the scaled mask, so a dropped NaN (or inf) stays NaN, forward and
    # backward; on both backends, so the check for non-finite values cannot miss one
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((30, 20)).astype(np.float32), rng.standard_normal((30, 20)).astype(np.float32)
    x[::3, :7] = np.nan
    x[1::3, :7] = np.inf
    g[:, 5:9] = np.nan
    mod = Dropout(0.4)
    with np.errstate(invalid="ignore"):  # a dropped inf is inf * 0 = NaN, as in torch
        y = toHost(mod(toDevice(x)))
    gx = toHost(mod.backward(toDevice(g)))
    keep = torch.from_numpy(toHost(mod.keep).astype(np.float32))
    assert 0 < keep[:, :9].sum() < keep[:, :9].numel()  # some NaN kept, some dropped
    tx = torch.from_numpy(x).requires_grad_()
    ty = tx * keep / 0.6
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_dropout_keeps_the_input_dtype(dtype):
    mod = Dropout(0.2)
    x = toDevice(np.ones((4, 6), dtype))
    assert mod(x).dtype == dtype and mod.backward(x).dtype == dtype


def test_dropout_in_float16_matches_float32_with_the_same_mask():
    # the float16 mask kernel compiles and computes: one seed gives one mask whatever the dtype
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((30, 20)).astype(np.float16), rng.standard_normal((30, 20)).astype(np.float16)
    results = {}
    for dtype in (np.float16, np.float32):
        mod = Dropout(0.3)
        setSeed(4)
        y = mod(toDevice(x, dtype))
        gx = mod.backward(toDevice(g, dtype))
        assert y.dtype == gx.dtype == dtype
        results[dtype] = toHost(y).astype(np.float32), toHost(gx).astype(np.float32)
    for half, single in zip(results[np.float16], results[np.float32]):
        np.testing.assert_allclose(half, single, rtol=1e-3, atol=1e-3)  # one float16 rounding of x / 0.7


def test_dropout_with_p_zero_is_the_identity_in_train_mode():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(toHost(Dropout(0.0)(toDevice(x))), x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_probability_outside_zero_one_is_a_value_error(p):
    with pytest.raises(ValueError, match=rf"Dropout: dropout probability p must be in \[0, 1\), got {p}"):
        Dropout(p)


def test_dropout_draws_one_mask_value_per_element():
    mod = Dropout(0.5)
    y = toHost(mod(toDevice(np.ones((4, 3, 8, 8), np.float32))))
    assert mod.keep.shape == (4, 3, 8, 8)
    assert ((y == 0).any(axis=(2, 3)) & (y != 0).any(axis=(2, 3))).all()  # no map dropped or kept whole
