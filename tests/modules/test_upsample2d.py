"""Upsample2D: nearest and bilinear (align_corners=False) upsampling by integer factors."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.upsample2d import Upsample2D

configs = {"nearest-2": dict(scale=2, mode="nearest"), "nearest-1x3": dict(scale=(1, 3), mode="nearest"),
           "bilinear-2": dict(scale=2, mode="bilinear"), "bilinear-3x2": dict(scale=(3, 2), mode="bilinear"),
           "bilinear-1": dict(scale=1, mode="bilinear")}


def randn(shape, seed, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_upsample2d_gradients_match_finite_differences_in_train_and_eval_mode(cfg, gradsInBothModes):
    gradsInBothModes(Upsample2D(**cfg), randn((2, 2, 3, 4), 0, np.float64))


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_upsample2d_matches_torch_interpolate(cfg, torchParity):
    torch = pytest.importorskip("torch")
    mod = Upsample2D(**cfg)
    options = {"align_corners": False} if mod.mode == "bilinear" else {}
    y = torchParity(mod, randn((3, 4, 5, 7), 1, np.float32), lambda t: torch.nn.functional.interpolate(
        t, scale_factor=mod.scale, mode=mod.mode, **options))
    assert y.shape == (3, 4, 5 * mod.scale[0], 7 * mod.scale[1])


def test_upsample2d_bilinear_keeps_constant_images_and_edges():
    x = np.full((1, 1, 3, 3), 2.5, np.float32)
    np.testing.assert_allclose(toHost(Upsample2D(4, "bilinear")(toDevice(x))), 2.5, rtol=1e-6)
    ramp = np.arange(3, dtype=np.float32).reshape(1, 1, 1, 3)
    y = toHost(Upsample2D((1, 2), "bilinear")(toDevice(ramp)))[0, 0, 0]
    np.testing.assert_allclose(y, [0, 0.25, 0.75, 1.25, 1.75, 2], rtol=1e-6)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample2d_rebuilds_from_its_file(mode, roundTrip):
    roundTrip(Upsample2D((2, 3), mode, name="up"), randn((2, 3, 4, 4), 0, np.float32))


def test_upsample2d_rejects_sequences_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"Upsample2D: expected input of shape \(batch, maps, height, width\), "
                                         r"got \(2, 3, 4\)"):
        Upsample2D(2)(toDevice(np.zeros((2, 3, 4), np.float32)))


@pytest.mark.parametrize("args,message", [((2, "bicubic"), "unknown mode 'bicubic'"),
                                          ((1.5,), "scale must be an int or an \\(h, w\\) pair"),
                                          ((0,), "scale must be an int or an \\(h, w\\) pair of ints >= 1")])
def test_upsample2d_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        Upsample2D(*args)
