"""MaxPool3D: MaxPoolND on (batch, maps, depth, height, width) volumes, checked against finite
differences and torch."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.maxpool3d import MaxPool3D

configs = {
    "2": dict(size=2),
    "3-stride2-pad1": dict(size=3, stride=2, pad=1),
    "anisotropic": dict(size=(1, 2, 3), stride=(1, 2, 1), pad=(0, 1, 1)),
    "overlapping": dict(size=2, stride=1),
    "ceil-3-stride2-pad1": dict(size=3, stride=2, pad=1, ceilMode=True),
    "ceil-rule-drops-last": dict(size=2, stride=(1, 4, 3), pad=(0, 1, 1), ceilMode=True),
    "dilation-anisotropic": dict(size=(2, 2, 3), stride=1, pad=(1, 0, 1), dilation=(2, 3, 1)),
    "dilation-ceil": dict(size=2, stride=2, dilation=2, ceilMode=True),
}


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool3d_gradients_match_finite_differences_in_train_and_eval_mode(cfg, distinct, gradsInBothModes):
    gradsInBothModes(MaxPool3D(**cfg), distinct((2, 2, 4, 5, 4), 0, np.float64))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool3d_matches_torch_forward_and_backward_with_ties(cfg, train, distinct, torchParity):
    torch = pytest.importorskip("torch")
    x = distinct((3, 2, 5, 6, 7), 1, np.float32)
    x[1, :, 1:4, 2:5] = 0.25  # ties across all three axes: the first maximum in row-major order wins
    mod = MaxPool3D(**cfg)
    mod.train = train
    torchParity(mod, x, lambda t: torch.nn.functional.max_pool3d(t, mod.size, mod.stride, mod.pad, mod.dilation,
                                                                 ceil_mode=mod.ceilMode))


def test_maxpool3d_rebuilds_from_its_file(distinct, roundTrip):
    roundTrip(MaxPool3D((1, 2, 2), name="pool"), distinct((2, 3, 2, 4, 4), 0, np.float32))


def test_maxpool3d_window_over_256_elements_keeps_wider_indices(distinct, torchParity):
    torch = pytest.importorskip("torch")
    mod = MaxPool3D((5, 8, 7))
    assert mod.indexDtype == np.int32
    torchParity(mod, distinct((2, 2, 5, 8, 7), 3, np.float32), lambda t: torch.nn.functional.max_pool3d(t, mod.size))


def test_maxpool3d_rejects_images_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"MaxPool3D: expected input of shape \(batch, maps, depth, height, width\), "
                                         r"got \(2, 3, 4, 4\)"):
        MaxPool3D(2)(toDevice(np.zeros((2, 3, 4, 4), np.float32)))


def test_maxpool3d_rejects_volume_smaller_than_window():
    with pytest.raises(ShapeError, match=r"\(1, 2, 4, 1, 4\) padded by \(0, 0, 0\) is smaller than the 2x2x2 window"):
        MaxPool3D(2)(toDevice(np.zeros((1, 2, 4, 1, 4), np.float32)))



def test_maxpool3d_dilation_and_ceil_mode_rebuild_from_the_file(distinct, roundTrip):
    roundTrip(MaxPool3D((1, 2, 2), stride=2, dilation=(1, 2, 1), ceilMode=True, name="pool"),
              distinct((2, 3, 2, 5, 5), 0, np.float32))
