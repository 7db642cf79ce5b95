"""AvgPool3D: AvgPoolND on (batch, maps, depth, height, width) volumes, checked against finite
differences and torch."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.avgpool3d import AvgPool3D

configs = {"2": dict(size=2), "3-stride2-pad1": dict(size=3, stride=2, pad=1), "overlapping": dict(size=2, stride=1),
           "anisotropic": dict(size=(1, 2, 3), stride=(1, 2, 1), pad=(0, 1, 1)), "whole-volume": dict(size=(4, 5, 4)),
           # ceil mode (the last window partial, or dropped by torch's rule) and count_include_pad=False
           "ceil-3-stride2-pad1": dict(size=3, stride=2, pad=1, ceilMode=True),
           "ceil-rule-drops-last": dict(size=2, stride=(1, 4, 3), pad=(0, 1, 1), ceilMode=True),
           "exclude-pad": dict(size=(2, 3, 2), stride=(1, 2, 2), pad=1, countIncludePad=False),
           "exclude-pad-ceil": dict(size=3, stride=2, pad=1, ceilMode=True, countIncludePad=False)}


def randn(shape, seed, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_avgpool3d_gradients_match_finite_differences_in_train_and_eval_mode(cfg, gradsInBothModes):
    gradsInBothModes(AvgPool3D(**cfg), randn((2, 2, 4, 5, 4), 0, np.float64))


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_avgpool3d_matches_torch_forward_and_backward(cfg, torchParity):
    torch = pytest.importorskip("torch")
    mod = AvgPool3D(**cfg)
    torchParity(mod, randn((3, 2, 4, 5, 4), 1, np.float32),
                lambda t: torch.nn.functional.avg_pool3d(t, mod.size, mod.stride, mod.pad, ceil_mode=mod.ceilMode,
                                                         count_include_pad=mod.countIncludePad))


def test_avgpool3d_whole_volume_fast_path_equals_the_general_path(monkeypatch):
    fast, general = AvgPool3D((3, 4, 5)), AvgPool3D((3, 4, 5))
    assert fast.coversImage((3, 4, 5)) and not AvgPool3D((3, 4, 5), pad=1).coversImage((3, 4, 5))
    monkeypatch.setattr(general, "coversImage", lambda insize: False)
    x = toDevice(randn((4, 5, 3, 4, 5), 1, np.float32))
    y = toHost(fast(x))
    assert y.shape == (4, 5, 1, 1, 1)
    np.testing.assert_allclose(y, toHost(general(x)), rtol=1e-6, atol=1e-7)
    g = toDevice(randn(y.shape, 2, np.float32))
    np.testing.assert_array_equal(toHost(fast.backward(g)), toHost(general.backward(g)))


def test_avgpool3d_rebuilds_from_its_file(roundTrip):
    roundTrip(AvgPool3D((1, 2, 2), name="pool"), randn((2, 3, 2, 4, 4), 0, np.float32))


def test_avgpool3d_rejects_images_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"AvgPool3D: expected input of shape \(batch, maps, depth, height, width\), "
                                         r"got \(2, 3, 4, 4\)"):
        AvgPool3D(2)(toDevice(np.zeros((2, 3, 4, 4), np.float32)))



def test_avgpool3d_ceil_mode_and_count_include_pad_rebuild_from_the_file(roundTrip):
    roundTrip(AvgPool3D(3, stride=2, pad=1, ceilMode=True, countIncludePad=False, name="pool"),
              randn((2, 3, 4, 5, 5), 0, np.float32))
