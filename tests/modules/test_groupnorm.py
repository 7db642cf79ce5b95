"""GroupNorm: per-sample normalisation over groups of maps, with a per-map affine."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.groupnorm import GroupNorm

cases = {"2-groups-images": (2, (2, 4, 3, 2)), "1-group-features": (1, (3, 4)), "4-groups-sequences": (4, (2, 4, 5)),
         "2-groups-volumes": (2, (2, 4, 2, 2, 2))}


@pytest.mark.parametrize("groups,shape", cases.values(), ids=cases.keys())
def test_groupnorm_gradients_match_finite_differences(groups, shape, randomAffine):
    mod = randomAffine(GroupNorm(groups, 4).cast(np.float64))
    checkModuleGrads(mod, np.random.default_rng(0).normal(1.0, 2.0, shape))


def test_groupnorm_without_affine_has_no_variables_and_correct_gradients():
    mod = GroupNorm(2, 4, affine=False)
    assert mod.vars == {}
    checkModuleGrads(mod, np.random.default_rng(0).standard_normal((2, 4, 3)))


@pytest.mark.parametrize("groups,shape", cases.values(), ids=cases.keys())
def test_groupnorm_matches_torch_with_parameter_gradients(groups, shape, affineParity):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).normal(1.0, 2.0, (5,) + shape[1:]).astype(np.float32)
    affineParity(GroupNorm(groups, 4), torch.nn.GroupNorm(groups, 4), x)


def test_groupnorm_rebuilds_from_its_file(randomAffine, roundTrip):
    roundTrip(randomAffine(GroupNorm(3, 6, epsilon=1e-4, name="gn")),
              np.random.default_rng(2).standard_normal((2, 6, 3, 3)).astype(np.float32))


@pytest.mark.parametrize("shape", [(2, 6, 3, 3), (8,)])
def test_groupnorm_rejects_wrong_maps_naming_expected_and_got(shape):
    with pytest.raises(ShapeError, match=rf"GroupNorm: expected input of shape \(batch, 4, \.\.\.\), got \({shape[0]},"):
        GroupNorm(2, 4)(toDevice(np.zeros(shape, np.float32)))


def test_groupnorm_rejects_maps_that_do_not_split_into_the_groups():
    with pytest.raises(ValueError, match=r"maps \(6\) must be a multiple of groups \(4\)"):
        GroupNorm(4, 6)
