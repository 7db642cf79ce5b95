"""GlobalAvgPool: the mean of each map over its spatial axes, for 1D, 2D and 3D inputs."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.globalavgpool import GlobalAvgPool

shapes = {"1d": (3, 4, 7), "2d": (3, 4, 5, 6), "3d": (2, 3, 3, 4, 5)}


def randn(shape, seed, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("shape", shapes.values(), ids=shapes.keys())
def test_globalavgpool_gradients_match_finite_differences_in_train_and_eval_mode(shape, gradsInBothModes):
    gradsInBothModes(GlobalAvgPool(), randn(shape, 0, np.float64))


@pytest.mark.parametrize("shape", shapes.values(), ids=shapes.keys())
def test_globalavgpool_matches_torch_adaptive_average_pooling_flattened(shape, torchParity):
    torch = pytest.importorskip("torch")
    pool = {3: torch.nn.functional.adaptive_avg_pool1d, 4: torch.nn.functional.adaptive_avg_pool2d,
            5: torch.nn.functional.adaptive_avg_pool3d}[len(shape)]
    y = torchParity(GlobalAvgPool(), randn(shape, 1, np.float32), lambda t: pool(t, 1).flatten(1))
    assert y.shape == shape[:2]


def test_globalavgpool_rebuilds_from_its_file(roundTrip):
    roundTrip(GlobalAvgPool(name="gap"), randn((2, 3, 4, 4), 0, np.float32))


def test_globalavgpool_keeps_the_input_dtype():
    mod = GlobalAvgPool()
    assert toHost(mod(toDevice(np.ones((2, 3, 4), np.float64)))).dtype == np.float64
    assert toHost(mod.backward(toDevice(np.ones((2, 3), np.float64)))).dtype == np.float64


@pytest.mark.parametrize("shape", [(2, 3), (1, 2, 3, 4, 5, 6)])
def test_globalavgpool_rejects_input_without_one_to_three_spatial_axes(shape):
    with pytest.raises(ShapeError, match=r"GlobalAvgPool: expected input of shape \(batch, maps, length\), .* "
                                         rf"or \(batch, maps, depth, height, width\), got \({shape[0]}, {shape[1]}"):
        GlobalAvgPool()(toDevice(np.zeros(shape, np.float32)))
