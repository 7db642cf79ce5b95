"""LayerNorm: per-sample normalisation over the trailing normalizedShape, with an elementwise affine."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.layernorm import LayerNorm

cases = {"features": ((4, 6), 6), "last-axis": ((2, 3, 5), (5,)), "two-axes": ((2, 3, 4, 5), (4, 5))}


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape,normalizedShape", cases.values(), ids=cases.keys())
def test_layernorm_gradients_match_finite_differences(shape, normalizedShape, affine, randomAffine):
    mod = LayerNorm(normalizedShape, affine=affine).cast(np.float64)
    checkModuleGrads(randomAffine(mod) if affine else mod, np.random.default_rng(0).normal(1.0, 2.0, shape))


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape,normalizedShape", cases.values(), ids=cases.keys())
def test_layernorm_matches_torch_with_parameter_gradients(shape, normalizedShape, affine, affineParity):
    torch = pytest.importorskip("torch")
    ref = torch.nn.LayerNorm(normalizedShape, eps=1e-3, elementwise_affine=affine)
    x = np.random.default_rng(1).normal(1.0, 2.0, shape).astype(np.float32)
    affineParity(LayerNorm(normalizedShape, epsilon=1e-3, affine=affine), ref, x)


def test_layernorm_is_the_same_in_eval_mode_and_normalises_each_sample():
    x = toDevice(np.random.default_rng(0).normal(5.0, 4.0, (3, 4, 50)).astype(np.float32))
    mod = LayerNorm(50)
    y = toHost(mod(x)).copy()
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=-1), 1, rtol=1e-3)
    np.testing.assert_array_equal(toHost(mod.evalMode()(x)), y)


def test_layernorm_rebuilds_from_its_file(randomAffine, roundTrip):
    roundTrip(randomAffine(LayerNorm((3, 4), epsilon=1e-3, name="ln")),
              np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32))


@pytest.mark.parametrize("shape", [(2, 3, 4), (4, 3)])
def test_layernorm_rejects_other_trailing_shapes_naming_expected_and_got(shape):
    with pytest.raises(ShapeError, match=rf"LayerNorm: expected input of shape \(batch, \.\.\., 4, 3\), "
                                         rf"got \({shape[0]}, {shape[1]}"):
        LayerNorm((4, 3))(toDevice(np.zeros(shape, np.float32)))
