import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.batchnorm import BatchNorm
from macrobatch.modules.batchnorm2d import BatchNorm2D
from macrobatch.modules.module import buildFromBlueprint


def test_batchnorm2d_train_mode_gradients_match_finite_differences(randomAffine):
    mod = randomAffine(BatchNorm2D(3).cast(np.float64))
    checkModuleGrads(mod, np.random.default_rng(0).normal(1.0, 2.0, (2, 3, 3, 2)))


def test_batchnorm2d_eval_mode_gradients_match_finite_differences(randomAffine, trainSteps):
    mod = randomAffine(BatchNorm2D(3).cast(np.float64))
    trainSteps(mod, (2, 3, 3, 2))
    checkModuleGrads(mod.evalMode(), np.random.default_rng(0).normal(1.0, 2.0, (2, 3, 3, 2)))


def test_batchnorm2d_normalises_each_map_over_batch_and_spatial_axes():
    x = np.random.default_rng(0).normal(5.0, 4.0, (8, 3, 5, 5)).astype(np.float32)
    y = toHost(BatchNorm2D(3)(toDevice(x)))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)


def test_batchnorm2d_matches_torch_in_train_and_eval_mode_with_running_statistics(batchNormParity):
    torch = pytest.importorskip("torch")
    batchNormParity(BatchNorm2D(3, epsilon=1e-3), torch.nn.BatchNorm2d(3, eps=1e-3), (4, 3, 5, 6), atol=1e-4)


def toRows(images):
    """(N, C, H, W) -> (N * H * W, C): one row per pixel."""
    return images.transpose(0, 2, 3, 1).reshape(-1, images.shape[1])


def test_batchnorm2d_is_batchnorm_over_maps_of_flattened_pixels():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    g = np.random.default_rng(1).standard_normal((2, 3, 4, 4)).astype(np.float32)
    bn2d, bn = BatchNorm2D(3), BatchNorm(3)
    np.testing.assert_allclose(toRows(toHost(bn2d(toDevice(x)))), toHost(bn(toDevice(toRows(x)))), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(toRows(toHost(bn2d.backward(toDevice(g)))), toHost(bn.backward(toDevice(toRows(g)))),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(toHost(bn2d.attrs["var"]), toHost(bn.attrs["var"]), rtol=1e-6)


def test_batchnorm2d_rebuilds_from_blueprint_as_batchnorm2d():
    mod = buildFromBlueprint(BatchNorm2D(5, momentum=0.05, name="bn").getBlueprint())
    assert type(mod) is BatchNorm2D and (mod.maps, mod.momentum, mod.name) == (5, 0.05, "bn")


def test_batchnorm2d_rejects_wrong_map_count_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 8, height, width\), got \(2, 4, 3, 3\)"):
        BatchNorm2D(8)(toDevice(np.zeros((2, 4, 3, 3), np.float32)))


def test_batchnorm2d_rejects_flat_input_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 4, height, width\), got \(2, 4\)"):
        BatchNorm2D(4)(toDevice(np.zeros((2, 4), np.float32)))


def test_batchnorm2d_reused_scratch_leaves_earlier_outputs_and_gradients_intact_and_follows_shape_changes():
    rng = np.random.default_rng(4)
    shapes = ((4, 3, 5, 5), (4, 3, 5, 5), (6, 3, 2, 7))
    data = [toDevice(rng.normal(2.0, 3.0, shape).astype(np.float32)) for shape in shapes]
    grads = [toDevice(rng.standard_normal(shape).astype(np.float32)) for shape in shapes]
    mod = BatchNorm2D(3)
    results = [(mod(x), mod.backward(g)) for x, g in zip(data, grads)]
    evalOut = mod.evalMode()(data[0])
    evalCopy = toHost(evalOut).copy()
    mod(data[1])
    np.testing.assert_array_equal(toHost(evalOut), evalCopy)
    for x, g, (y, dx) in zip(data, grads, results):
        fresh = BatchNorm2D(3)
        np.testing.assert_array_equal(toHost(y), toHost(fresh(x)))
        np.testing.assert_array_equal(toHost(dx), toHost(fresh.backward(g)))
