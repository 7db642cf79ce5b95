import json

import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.module import buildFromBlueprint, loadModel
from macrobatch.modules.pad2d import Pad2D

modes = ["constant", "reflect", "replicate"]
# (left, right, top, bottom): asymmetric, one-sided, as deep as reflect allows on a 4x5 image, uniform int
pads = {"asymmetric": (1, 2, 0, 3), "one-side": (0, 0, 2, 0), "deepest": (4, 4, 3, 3), "int": 1}


def randn(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def torchPad(pad):
    return (pad,) * 4 if isinstance(pad, int) else pad


@pytest.mark.parametrize("pad", pads.values(), ids=pads.keys())
@pytest.mark.parametrize("mode", modes)
def test_pad2d_gradients_match_finite_differences(mode, pad):
    checkModuleGrads(Pad2D(pad, mode, value=0.5), randn((2, 2, 4, 5), 0, np.float64))


@pytest.mark.parametrize("pad", pads.values(), ids=pads.keys())
@pytest.mark.parametrize("mode", modes)
def test_pad2d_matches_torch(mode, pad):
    torch = pytest.importorskip("torch")
    x = randn((3, 2, 4, 5), 1)
    tx = torch.from_numpy(x).requires_grad_()
    kwargs = dict(value=-1.5) if mode == "constant" else {}
    ty = torch.nn.functional.pad(tx, torchPad(pad), mode=mode, **kwargs)
    g = randn(tuple(ty.shape), 2)
    ty.backward(torch.from_numpy(g))
    mod = Pad2D(pad, mode, value=-1.5)
    y = toHost(mod(toDevice(x)))
    gx = toHost(mod.backward(toDevice(g)))
    assert y.dtype == gx.dtype == np.float32
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_pad2d_replicate_backward_sums_every_copy_onto_the_edge_pixel():
    mod = Pad2D((2, 1, 0, 0), "replicate")
    mod(toDevice(np.arange(3, dtype=np.float32).reshape(1, 1, 1, 3)))
    gx = toHost(mod.backward(toDevice(np.ones((1, 1, 1, 6), np.float32))))
    np.testing.assert_array_equal(gx, [[[[3, 1, 2]]]])


def test_pad2d_reflect_backward_sums_onto_the_mirrored_pixels_not_the_edge():
    mod = Pad2D((2, 1, 0, 0), "reflect")
    y = toHost(mod(toDevice(np.array([[[[10, 20, 30, 40]]]], np.float32))))
    np.testing.assert_array_equal(y, [[[[30, 20, 10, 20, 30, 40, 30]]]])
    gx = toHost(mod.backward(toDevice(np.array([[[[1, 2, 4, 8, 16, 32, 64]]]], np.float32))))
    np.testing.assert_array_equal(gx, [[[[4, 8 + 2, 16 + 1 + 64, 32]]]])


def test_pad2d_survives_save_and_load_model(tmp_path):
    mod = Pad2D((1, 2, 3, 0), "reflect", name="pad")
    json.dumps(mod.getBlueprint())
    mod.save(tmp_path / "p.h5")
    loaded = loadModel(tmp_path / "p.h5")
    assert type(loaded) is Pad2D and (loaded.mode, loaded.name) == ("reflect", "pad")
    x = toDevice(randn((2, 1, 4, 4), 0))
    np.testing.assert_array_equal(toHost(loaded(x)), toHost(mod(x)))
    copy = buildFromBlueprint(json.loads(json.dumps(Pad2D(2, value=3.0).getBlueprint())))
    assert (copy.left, copy.bottom, copy.value) == (2, 2, 3.0)


@pytest.mark.parametrize("pad", [-1, (1, 2, 3), (1, 2, 3, -1), (1, 2, 3, 0.5), 1.0, True, "1"])
def test_pad2d_refuses_pads_that_are_not_four_non_negative_ints(pad):
    with pytest.raises(ValueError, match=r"Pad2D: pad must be an int or a \(left, right, top, bottom\) tuple"):
        Pad2D(pad)


def test_pad2d_refuses_an_unknown_mode_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"mode must be one of \['constant', 'reflect', 'replicate'\], got 'circular'"):
        Pad2D(1, "circular")


def test_pad2d_reflect_refuses_a_pad_as_large_as_the_image():
    with pytest.raises(ShapeError, match=r"Pad2D 'p': reflect padding \(left, right, top, bottom\) = "
                                         r"\(0, 0, 4, 0\) must be smaller than the image it mirrors, "
                                         r"got input of shape \(1, 1, 4, 9\)"):
        Pad2D((0, 0, 4, 0), "reflect", name="p")(toDevice(np.zeros((1, 1, 4, 9), np.float32)))


def test_pad2d_replicate_accepts_a_pad_larger_than_the_image():
    y = toHost(Pad2D(3, "replicate")(toDevice(np.full((1, 1, 1, 1), 7.0, np.float32))))
    np.testing.assert_array_equal(y, np.full((1, 1, 7, 7), 7.0))


def test_pad2d_rejects_input_that_is_not_an_image_batch():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, maps, height, width\), got \(3, 4, 5\)"):
        Pad2D(1)(toDevice(np.zeros((3, 4, 5), np.float32)))


def test_pad2d_rejects_integer_input():
    with pytest.raises(DtypeError, match="int64"):
        Pad2D(1)(toDevice(np.zeros((1, 1, 3, 3), np.int64)))
