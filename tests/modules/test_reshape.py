import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost, xp
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.module import buildFromBlueprint
from macrobatch.modules.reshape import Reshape


def test_reshape_gradients_match_finite_differences():
    checkModuleGrads(Reshape((3, 4)), np.random.default_rng(0).standard_normal((2, 12)))


def test_reshape_keeps_the_batch_axis_and_infers_one_minus_one():
    x = np.arange(2 * 24, dtype=np.float32).reshape(2, 24)
    y = Reshape((2, -1, 3))(toDevice(x))
    assert y.shape == (2, 2, 4, 3)
    np.testing.assert_array_equal(toHost(y), x.reshape(2, 2, 4, 3))


def test_reshape_output_and_gradient_are_views_of_the_same_memory():
    x = toDevice(np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32))
    mod = Reshape((4, 3))
    y = mod(x)
    assert y.shape == (2, 4, 3) and xp.shares_memory(y, x)
    g = toDevice(np.ones((2, 4, 3), np.float32))
    gx = mod.backward(g)
    assert gx.shape == (2, 3, 4) and xp.shares_memory(gx, g)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_reshape_accepts_any_float_dtype(dtype):
    assert Reshape((-1,))(toDevice(np.zeros((2, 3, 3), dtype))).dtype == dtype


def test_reshape_rejects_a_sample_size_that_does_not_fit_naming_both_shapes():
    with pytest.raises(ShapeError, match=r"cannot reshape input of shape \(2, 10\) to \(batch,\) \+ \(3, 4\)"):
        Reshape((3, 4))(toDevice(np.zeros((2, 10), np.float32)))
    with pytest.raises(ShapeError, match=r"\(2, 10\) to \(batch,\) \+ \(3, -1\)"):
        Reshape((3, -1))(toDevice(np.zeros((2, 10), np.float32)))


@pytest.mark.parametrize("shape", [(-1, -1), (3, 0), (-2, 3)])
def test_reshape_refuses_a_shape_with_two_minus_ones_or_non_positive_sizes(shape):
    with pytest.raises(ValueError, match="at most one -1"):
        Reshape(shape)


def test_reshape_rebuilds_from_a_json_blueprint():
    mod = buildFromBlueprint({"class": "Reshape", "args": {"shape": [4, -1], "name": None}})
    assert mod(toDevice(np.zeros((2, 8), np.float32))).shape == (2, 4, 2)
