"""InstanceNorm2D: each map of each image normalised on its own, affine optional (off by default)."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.instancenorm2d import InstanceNorm2D


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_instancenorm2d_gradients_match_finite_differences(affine, randomAffine):
    mod = InstanceNorm2D(3, affine=affine).cast(np.float64)
    checkModuleGrads(randomAffine(mod) if affine else mod, np.random.default_rng(0).normal(1.0, 2.0, (2, 3, 3, 2)))


def test_instancenorm2d_has_no_affine_parameters_by_default_as_torch():
    assert InstanceNorm2D(3).vars == {} and set(InstanceNorm2D(3, affine=True).vars) == {"scale", "bias"}


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_instancenorm2d_matches_torch_in_train_and_eval_mode(affine, affineParity):
    torch = pytest.importorskip("torch")
    ref = torch.nn.InstanceNorm2d(3, eps=1e-3, affine=affine)
    mod = InstanceNorm2D(3, epsilon=1e-3, affine=affine)
    x = np.random.default_rng(1).normal(1.0, 2.0, (4, 3, 5, 6)).astype(np.float32)
    y = affineParity(mod, ref, x)
    np.testing.assert_array_equal(toHost(mod.evalMode()(toDevice(x))), y)
    np.testing.assert_allclose(y, ref.eval()(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_instancenorm2d_rebuilds_from_its_file_as_instancenorm2d(randomAffine, roundTrip):
    loaded = roundTrip(randomAffine(InstanceNorm2D(3, affine=True, name="in")),
                       np.random.default_rng(2).standard_normal((2, 3, 4, 4)).astype(np.float32))
    assert (loaded.maps, loaded.numGroups, loaded.affine) == (3, 3, True)


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 4, 3, 3)])
def test_instancenorm2d_rejects_wrong_rank_or_maps_naming_expected_and_got(shape):
    with pytest.raises(ShapeError, match=rf"InstanceNorm2D: expected input of shape \(batch, 3, height, width\), "
                                         rf"got \({shape[0]}, {shape[1]}, {shape[2]}"):
        InstanceNorm2D(3)(toDevice(np.zeros(shape, np.float32)))
