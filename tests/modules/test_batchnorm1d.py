"""BatchNorm1D: BatchNorm on (batch, maps) features and (batch, maps, length) sequences."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.batchnorm1d import BatchNorm1D

shapes = {"features": (5, 3), "sequences": (3, 3, 4)}


@pytest.mark.parametrize("shape", shapes.values(), ids=shapes.keys())
def test_batchnorm1d_train_and_eval_mode_gradients_match_finite_differences(shape, randomAffine, trainSteps):
    mod = randomAffine(BatchNorm1D(3).cast(np.float64))
    x = np.random.default_rng(0).normal(1.0, 2.0, shape)
    checkModuleGrads(mod, x)
    trainSteps(mod, shape)
    checkModuleGrads(mod.evalMode(), x)


@pytest.mark.parametrize("shape", shapes.values(), ids=shapes.keys())
def test_batchnorm1d_matches_torch_in_train_and_eval_mode_with_running_statistics(shape, batchNormParity):
    torch = pytest.importorskip("torch")
    batchNormParity(BatchNorm1D(3, momentum=0.2), torch.nn.BatchNorm1d(3, momentum=0.2), (6,) + shape[1:])


def test_batchnorm1d_takes_features_and_sequences_with_one_set_of_running_statistics(trainSteps):
    mod = BatchNorm1D(2)
    trainSteps(mod, (4, 2), dtype=np.float32)
    trainSteps(mod, (4, 2, 5), dtype=np.float32)
    assert mod.attrs["mean"].shape == (2,)
    assert mod.evalMode()(toDevice(np.ones((1, 2, 7), np.float32))).shape == (1, 2, 7)


def test_batchnorm1d_running_statistics_survive_save_and_load(randomAffine, trainSteps, roundTrip):
    mod = randomAffine(BatchNorm1D(3, epsilon=1e-3, name="bn"))
    trainSteps(mod, (4, 3, 2), dtype=np.float32)
    roundTrip(mod, np.random.default_rng(2).standard_normal((2, 3, 2)).astype(np.float32))


@pytest.mark.parametrize("shape", [(2, 4), (2, 3, 4, 4)])
def test_batchnorm1d_rejects_wrong_maps_or_rank_naming_expected_and_got(shape):
    with pytest.raises(ShapeError, match=rf"BatchNorm1D: expected input of shape \(batch, 3\) or \(batch, 3, length\), "
                                         rf"got \({shape[0]}, {shape[1]}"):
        BatchNorm1D(3)(toDevice(np.zeros(shape, np.float32)))
