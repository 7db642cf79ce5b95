import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.batchnorm import BatchNorm
from macrobatch.modules.module import loadModel


def test_batchnorm_train_mode_gradients_match_finite_differences(randomAffine):
    mod = randomAffine(BatchNorm(3).cast(np.float64))
    checkModuleGrads(mod, np.random.default_rng(0).normal(1.0, 2.0, (5, 3)))


def test_batchnorm_eval_mode_gradients_match_finite_differences(randomAffine, trainSteps):
    mod = randomAffine(BatchNorm(3).cast(np.float64))
    trainSteps(mod, (5, 3))
    checkModuleGrads(mod.evalMode(), np.random.default_rng(0).normal(1.0, 2.0, (5, 3)))


def test_batchnorm_without_affine_has_no_variables_and_correct_gradients():
    mod = BatchNorm(3, affine=False).cast(np.float64)
    assert mod.vars == {}
    checkModuleGrads(mod, np.random.default_rng(0).standard_normal((4, 3)))


def test_batchnorm_train_output_has_zero_mean_unit_variance_per_map():
    x = np.random.default_rng(0).normal(5.0, 4.0, (64, 4)).astype(np.float32)
    y = toHost(BatchNorm(4)(toDevice(x)))
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-3)


def test_batchnorm_matches_torch_in_train_and_eval_mode_with_running_statistics(batchNormParity):
    torch = pytest.importorskip("torch")
    batchNormParity(BatchNorm(4, momentum=0.2), torch.nn.BatchNorm1d(4, momentum=0.2), (6, 4))


def test_batchnorm_eval_mode_leaves_running_statistics_unchanged(trainSteps):
    mod = BatchNorm(3)
    trainSteps(mod, (4, 3), dtype=np.float32)
    mean, var = toHost(mod.attrs["mean"]).copy(), toHost(mod.attrs["var"]).copy()
    mod.evalMode()(toDevice(np.ones((4, 3), np.float32)))
    np.testing.assert_array_equal(toHost(mod.attrs["mean"]), mean)
    np.testing.assert_array_equal(toHost(mod.attrs["var"]), var)


def test_batchnorm_running_statistics_survive_save_and_load(tmp_path, randomAffine, trainSteps):
    mod = randomAffine(BatchNorm(3, momentum=0.3))
    trainSteps(mod, (4, 3), dtype=np.float32)
    mod.save(tmp_path / "bn.h5")
    loaded = loadModel(tmp_path / "bn.h5")
    assert type(loaded) is BatchNorm and loaded.momentum == 0.3
    x = toDevice(np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32))
    np.testing.assert_array_equal(toHost(loaded.evalMode()(x)), toHost(mod.evalMode()(x)))


def test_batchnorm_rejects_wrong_map_count_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 8\), got \(2, 4\)"):
        BatchNorm(8)(toDevice(np.zeros((2, 4), np.float32)))


def test_batchnorm_rejects_image_input_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 4\), got \(2, 4, 3, 3\)"):
        BatchNorm(4)(toDevice(np.zeros((2, 4, 3, 3), np.float32)))


def test_batchnorm_train_mode_rejects_a_single_value_per_map():
    with pytest.raises(ShapeError, match=r"more than one value per map.*\(1, 4\)"):
        BatchNorm(4)(toDevice(np.zeros((1, 4), np.float32)))
    assert BatchNorm(4).evalMode()(toDevice(np.zeros((1, 4), np.float32))).shape == (1, 4)


def test_batchnorm_without_affine_still_rejects_input_of_another_dtype():
    with pytest.raises(DtypeError, match="float64"):
        BatchNorm(3, affine=False)(toDevice(np.zeros((2, 3), np.float64)))
