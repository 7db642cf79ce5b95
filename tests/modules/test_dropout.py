import numpy as np
import pytest

from macrobatch.engine import setSeed
from macrobatch.engine.gradcheck import checkModuleGrads, numericGrad
from macrobatch.modules.dropout import Dropout


def test_dropout_eval_mode_is_the_identity():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    mod = Dropout(0.5).evalMode()
    assert mod(x) is x
    g = np.ones_like(x)
    assert mod.backward(g) is g


def test_dropout_eval_mode_gradients_match_finite_differences():
    checkModuleGrads(Dropout(0.3).evalMode(), np.random.default_rng(0).standard_normal((3, 4)))


def test_dropout_train_mode_gradients_match_finite_differences_for_a_fixed_mask():
    mod = Dropout(0.4)
    x = np.random.default_rng(0).standard_normal((3, 5))
    weights = np.random.default_rng(1).standard_normal((3, 5))

    def loss():
        setSeed(9)  # the same mask on every call
        return (mod(x) * weights).sum()

    loss()
    analytic = mod.backward(weights)
    np.testing.assert_allclose(analytic, numericGrad(loss, x), rtol=1e-6, atol=1e-8)


def test_dropout_train_mode_zeroes_about_p_and_keeps_the_mean():
    x = np.ones((200, 500), np.float32)
    y = Dropout(0.3)(x)
    assert abs((y == 0).mean() - 0.3) < 0.005
    assert abs(y.mean() - 1) < 0.01
    np.testing.assert_allclose(np.unique(y), [0, 1 / 0.7], rtol=1e-6)


def test_dropout_same_seed_gives_the_same_mask():
    x = np.ones((50, 40), np.float32)
    mod = Dropout(0.5)
    setSeed(5)
    first = mod(x).copy()
    setSeed(5)
    np.testing.assert_array_equal(mod(x), first)
    assert not np.array_equal(mod(x), first)


def test_dropout_backward_applies_the_forward_mask():
    x = np.random.default_rng(0).uniform(1, 2, (30, 20)).astype(np.float32)
    mod = Dropout(0.5)
    y = mod(x)
    gx = mod.backward(np.ones_like(x))
    np.testing.assert_array_equal(gx == 0, y == 0)
    np.testing.assert_allclose(gx[y != 0], 2.0)


def test_dropout_keeps_the_input_dtype():
    for dtype in (np.float16, np.float64):
        mod = Dropout(0.2)
        x = np.ones((4, 6), dtype)
        assert mod(x).dtype == dtype and mod.backward(x).dtype == dtype


def test_dropout_with_p_zero_is_the_identity_in_train_mode():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(Dropout(0.0)(x), x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_probability_outside_zero_one_is_a_value_error(p):
    with pytest.raises(ValueError, match=rf"Dropout: dropout probability p must be in \[0, 1\), got {p}"):
        Dropout(p)


def test_dropout_draws_one_mask_value_per_element():
    mod = Dropout(0.5)
    y = mod(np.ones((4, 3, 8, 8), np.float32))
    assert mod.keep.shape == (4, 3, 8, 8)
    assert ((y == 0).any(axis=(2, 3)) & (y != 0).any(axis=(2, 3))).all()  # no map dropped or kept whole
