"""BatchNorm3D: BatchNorm on (batch, maps, depth, height, width) volumes."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.batchnorm3d import BatchNorm3D


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_batchnorm3d_gradients_match_finite_differences(train, randomAffine, trainSteps):
    mod = randomAffine(BatchNorm3D(2).cast(np.float64))
    trainSteps(mod, (2, 2, 2, 3, 2))
    mod.train = train
    checkModuleGrads(mod, np.random.default_rng(0).normal(1.0, 2.0, (2, 2, 2, 3, 2)))


def test_batchnorm3d_normalises_each_map_over_batch_and_the_three_spatial_axes():
    y = toHost(BatchNorm3D(3)(toDevice(np.random.default_rng(0).normal(5.0, 4.0, (4, 3, 3, 4, 5)).astype(np.float32))))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3, 4)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3, 4)), 1, rtol=1e-3)


def test_batchnorm3d_matches_torch_in_train_and_eval_mode_with_running_statistics(batchNormParity):
    torch = pytest.importorskip("torch")
    batchNormParity(BatchNorm3D(3, epsilon=1e-3), torch.nn.BatchNorm3d(3, eps=1e-3), (3, 3, 4, 3, 5), atol=1e-4)


def test_batchnorm3d_running_statistics_survive_save_and_load(randomAffine, trainSteps, roundTrip):
    mod = randomAffine(BatchNorm3D(3, momentum=0.3))
    trainSteps(mod, (2, 3, 2, 2, 2), dtype=np.float32)
    roundTrip(mod, np.random.default_rng(2).standard_normal((2, 3, 2, 2, 2)).astype(np.float32))


def test_batchnorm3d_rejects_images_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"BatchNorm3D: expected input of shape \(batch, 4, depth, height, width\), "
                                         r"got \(2, 4, 3, 3\)"):
        BatchNorm3D(4)(toDevice(np.zeros((2, 4, 3, 3), np.float32)))
