"""AvgPool1D: AvgPoolND on (batch, maps, length) sequences, checked against finite differences and torch."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.avgpool1d import AvgPool1D

configs = {"2": dict(size=2), "3-stride2-pad1": dict(size=3, stride=2, pad=1), "overlapping": dict(size=3, stride=1),
           "gaps": dict(size=2, stride=3), "whole-sequence": dict(size=9),
           # ceil mode (the last window partial, or dropped by torch's rule) and count_include_pad=False
           "ceil": dict(size=2, ceilMode=True), "ceil-rule-drops-last": dict(size=2, stride=4, pad=1, ceilMode=True),
           "exclude-pad": dict(size=3, stride=2, pad=1, countIncludePad=False),
           "exclude-pad-ceil": dict(size=4, stride=3, pad=2, ceilMode=True, countIncludePad=False)}


def randn(shape, seed, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_avgpool1d_gradients_match_finite_differences_in_train_and_eval_mode(cfg, gradsInBothModes):
    gradsInBothModes(AvgPool1D(**cfg), randn((2, 3, 9), 0, np.float64))


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_avgpool1d_matches_torch_forward_and_backward(cfg, torchParity):
    torch = pytest.importorskip("torch")
    mod = AvgPool1D(**cfg)
    torchParity(mod, randn((4, 3, 9), 1, np.float32),
                lambda t: torch.nn.functional.avg_pool1d(t, mod.size, mod.stride, mod.pad, ceil_mode=mod.ceilMode,
                                                         count_include_pad=mod.countIncludePad))


def test_avgpool1d_counts_padded_zeros_in_the_mean():
    y = toHost(AvgPool1D(3, stride=2, pad=1)(toDevice(np.ones((1, 1, 5), np.float32))))
    np.testing.assert_allclose(y[0, 0], [2 / 3, 1, 2 / 3], rtol=1e-6)


def test_avgpool1d_rebuilds_from_its_file(roundTrip):
    roundTrip(AvgPool1D(4, stride=1, pad=2, name="pool"), randn((2, 3, 8), 0, np.float32))


def test_avgpool1d_rejects_flat_input_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"AvgPool1D: expected input of shape \(batch, maps, length\), got \(2, 8\)"):
        AvgPool1D(2)(toDevice(np.zeros((2, 8), np.float32)))



def test_avgpool1d_ceil_mode_and_count_include_pad_rebuild_from_the_file(roundTrip):
    roundTrip(AvgPool1D(4, stride=3, pad=2, ceilMode=True, countIncludePad=False, name="pool"),
              randn((2, 3, 8), 0, np.float32))
