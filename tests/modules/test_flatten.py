import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost, xp
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.flatten import Flatten


def test_flatten_gradients_match_finite_differences():
    checkModuleGrads(Flatten(), np.random.default_rng(0).standard_normal((2, 3, 2, 2)))


def test_flatten_matches_torch_flatten():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(toHost(Flatten()(toDevice(x))), torch.nn.Flatten()(torch.from_numpy(x)).numpy())


def test_flatten_output_and_gradient_are_views_of_the_same_memory():
    x = toDevice(np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32))
    mod = Flatten()
    y = mod(x)
    assert y.shape == (2, 12) and xp.shares_memory(y, x)
    g = toDevice(np.ones((2, 12), np.float32))
    gx = mod.backward(g)
    assert gx.shape == (2, 3, 4) and xp.shares_memory(gx, g)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_flatten_accepts_any_float_dtype(dtype):
    assert Flatten()(toDevice(np.zeros((2, 3, 3), dtype))).dtype == dtype


def test_flatten_rejects_input_without_axes_after_the_batch():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, \.\.\.\).*got \(5,\)"):
        Flatten()(toDevice(np.zeros(5, np.float32)))
