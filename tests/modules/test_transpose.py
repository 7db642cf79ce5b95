import json

import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.module import buildFromBlueprint, loadModel
from macrobatch.modules.transpose import Transpose

permutations = [(0, 2, 3, 1), (0, 3, 1, 2), (0, 1, 3, 2), (0, 2, 1)]


def randn(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("axes", permutations)
def test_transpose_gradients_match_finite_differences(axes):
    checkModuleGrads(Transpose(axes), randn((2, 3, 4, 5)[:len(axes)], 0, np.float64))


@pytest.mark.parametrize("axes", permutations)
def test_transpose_matches_torch_permute(axes):
    torch = pytest.importorskip("torch")
    x = randn((2, 3, 4, 5)[:len(axes)], 1)
    tx = torch.from_numpy(x).requires_grad_()
    ty = tx.permute(*axes)
    g = randn(tuple(ty.shape), 2)
    ty.backward(torch.from_numpy(g))
    mod = Transpose(axes)
    y = mod(toDevice(x))
    gx = mod.backward(toDevice(g))
    np.testing.assert_array_equal(toHost(y), ty.detach().numpy())
    np.testing.assert_array_equal(toHost(gx), tx.grad.numpy())
    assert y.flags.c_contiguous and gx.flags.c_contiguous


def test_transpose_backward_is_the_inverse_permutation():
    mod = Transpose((0, 2, 3, 1))
    assert mod.inverse == (0, 3, 1, 2)
    x = randn((2, 3, 4, 5), 0)
    y = mod(toDevice(x))
    assert y.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(toHost(mod.backward(y)), x)  # the gradient goes back to the input's layout


def test_transpose_survives_save_and_load_model(tmp_path):
    mod = Transpose((0, 3, 1, 2), name="nhwc")
    json.dumps(mod.getBlueprint())
    mod.save(tmp_path / "t.h5")
    loaded = loadModel(tmp_path / "t.h5")
    assert type(loaded) is Transpose and loaded.axes == (0, 3, 1, 2) and loaded.name == "nhwc"
    x = toDevice(randn((2, 3, 4, 5), 0))
    np.testing.assert_array_equal(toHost(loaded(x)), toHost(mod(x)))
    assert buildFromBlueprint(json.loads(json.dumps(mod.getBlueprint()))).inverse == (0, 2, 3, 1)


@pytest.mark.parametrize("axes", [(1, 0, 2), (0, 1, 1), (0, 2, 3), (0,), (0, 1.0), (0, True), ()])
def test_transpose_refuses_axes_that_are_not_a_permutation_keeping_the_batch_axis(axes):
    with pytest.raises(ValueError, match=r"Transpose: axes must be a permutation of 0..n-1 \(n >= 2\) that keeps "
                                         r"the batch axis 0 first"):
        Transpose(axes)


def test_transpose_rejects_input_of_another_rank_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"Transpose 't': axes \(0, 2, 1\) need an input with 3 axes, "
                                         r"got shape \(2, 3, 4, 5\)"):
        Transpose((0, 2, 1), name="t")(toDevice(np.zeros((2, 3, 4, 5), np.float32)))


def test_transpose_rejects_integer_input():
    with pytest.raises(DtypeError, match="int32"):
        Transpose((0, 2, 1))(toDevice(np.zeros((2, 3, 4), np.int32)))
