"""MaxPool1D: MaxPoolND on (batch, maps, length) sequences, checked against finite differences and torch."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.maxpool1d import MaxPool1D

configs = {
    "2": dict(size=2),
    "3-stride2-pad1": dict(size=3, stride=2, pad=1),
    "overlapping": dict(size=3, stride=1),
    "gaps": dict(size=2, stride=3),
    "tuple": dict(size=(4,), stride=(2,), pad=(2,)),
    # ceil mode, its last window partial or dropped by torch's rule (it would start in the right padding)
    "ceil": dict(size=2, ceilMode=True),
    "ceil-3-stride2-pad1": dict(size=3, stride=2, pad=1, ceilMode=True),
    "ceil-rule-drops-last": dict(size=2, stride=4, pad=1, ceilMode=True),
    "dilation3": dict(size=3, stride=1, pad=1, dilation=3),
    "dilation-ceil": dict(size=2, stride=3, dilation=2, ceilMode=True),
}


@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool1d_gradients_match_finite_differences_in_train_and_eval_mode(cfg, distinct, gradsInBothModes):
    gradsInBothModes(MaxPool1D(**cfg), distinct((2, 3, 9), 0, np.float64))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("cfg", configs.values(), ids=configs.keys())
def test_maxpool1d_matches_torch_forward_and_backward_with_ties(cfg, train, distinct, torchParity):
    torch = pytest.importorskip("torch")
    x = distinct((4, 3, 11), 1, np.float32)
    x[1, :, 2:7] = 0.25  # ties: the gradient goes to the first maximum of the window
    mod = MaxPool1D(**cfg)
    mod.train = train
    torchParity(mod, x, lambda t: torch.nn.functional.max_pool1d(t, mod.size, mod.stride, mod.pad, mod.dilation,
                                                                 ceil_mode=mod.ceilMode))


def test_maxpool1d_rebuilds_from_its_file(distinct, roundTrip):
    roundTrip(MaxPool1D(3, stride=2, pad=1, name="pool"), distinct((2, 3, 8), 0, np.float32))


@pytest.mark.parametrize("shape,message", [
    ((2, 3, 4, 4), r"MaxPool1D: expected input of shape \(batch, maps, length\), got \(2, 3, 4, 4\)"),
    ((1, 2, 3), r"MaxPool1D: input of shape \(1, 2, 3\) padded by \(0,\) is smaller than the 4 window")])
def test_maxpool1d_rejects_images_and_sequences_shorter_than_the_window(shape, message):
    with pytest.raises(ShapeError, match=message):
        MaxPool1D(4)(toDevice(np.zeros(shape, np.float32)))


def test_maxpool1d_rejects_a_size_for_two_axes():
    with pytest.raises(ValueError, match=r"size must be an int or an \(l,\) tuple of ints >= 1, got \(2, 2\)"):
        MaxPool1D((2, 2))



def test_maxpool1d_dilation_and_ceil_mode_rebuild_from_the_file(distinct, roundTrip):
    roundTrip(MaxPool1D(3, stride=2, pad=1, dilation=2, ceilMode=True, name="pool"),
              distinct((2, 3, 10), 0, np.float32))
