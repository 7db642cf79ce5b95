"""The behaviour ConvND and DeconvND share, checked on each of their six thin classes (Conv1D/2D/3D and
Deconv1D/2D/3D) with every geometry option: stride, pad, dilation, groups (depthwise too), outPad.
Class-specific properties are in test_conv1d.py ... test_deconv3d.py. Inputs go through toDevice and
results through toHost, so on the CUDA backend the same tests check the GPU kernels."""
import json

import numpy as np
import pytest

from macrobatch.engine.backend import isCuda, toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.engine.im2col import col2im, im2col
from macrobatch.modules.conv1d import Conv1D
from macrobatch.modules.conv2d import Conv2D
from macrobatch.modules.conv3d import Conv3D
from macrobatch.modules.deconv1d import Deconv1D
from macrobatch.modules.deconv2d import Deconv2D
from macrobatch.modules.deconv3d import Deconv3D
from macrobatch.modules.module import buildFromBlueprint, loadModel

# class -> (name of the torch.nn.functional op, spatial input size for finite differences, for torch)
classes = {
    Conv1D: ("conv1d", (7,), (13,)),
    Conv2D: ("conv2d", (5, 6), (9, 8)),
    Conv3D: ("conv3d", (3, 4, 3), (6, 7, 5)),
    Deconv1D: ("conv_transpose1d", (4,), (9,)),
    Deconv2D: ("conv_transpose2d", (3, 4), (5, 6)),
    Deconv3D: ("conv_transpose3d", (2, 2, 3), (4, 5, 3)),
}


def perAxis(*values):
    """A geometry argument with a different value on each axis: the first nd of values, for any nd."""
    return lambda nd: values[:nd]


# name -> (outmaps, constructor arguments); inmaps is 4. Callables give one value per axis.
configs = {
    "plain": (3, dict(size=3)),
    "stride2-pad1": (3, dict(size=3, stride=2, pad=1)),
    "dilation2": (3, dict(size=2, dilation=2, pad=1)),
    "groups2": (6, dict(size=3, groups=2, pad=1)),
    "depthwise-stride-dilation": (8, dict(size=3, stride=2, pad=2, dilation=2, groups=4)),
    "per-axis": (3, dict(size=perAxis(2, 3, 1), stride=perAxis(1, 2, 2), pad=perAxis(1, 0, 1),
                         dilation=perAxis(2, 1, 1))),
    "1x1-no-bias": (5, dict(size=1, useBias=False)),
}
deconvOnly = {"outPad": (3, dict(size=3, stride=perAxis(2, 3, 2), pad=1, outPad=perAxis(1, 2, 0))),
              # torch takes output_padding < max(stride, dilation): here at least the stride on every axis
              "outPad-below-dilation": (3, dict(size=3, stride=perAxis(1, 2, 1), dilation=perAxis(2, 3, 3), pad=1,
                                                outPad=perAxis(1, 2, 2)))}

cases = [(cls, name) for cls in classes for name in (*configs, *deconvOnly)
         if name not in deconvOnly or cls.__name__.startswith("Deconv")]
ids = [f"{cls.__name__}-{name}" for cls, name in cases]


def build(cls, name, dtype=np.float32, seed=5):
    """The module of a case, with a random bias so a bias term cannot hide behind zeros."""
    outmaps, args = {**configs, **deconvOnly}[name]
    args = {k: v(cls.nd) if callable(v) else v for k, v in args.items()}
    mod = cls(4, outmaps, **args).cast(dtype)
    if "b" in mod.vars:
        mod.vars["b"].data[...] = toDevice(np.random.default_rng(seed).standard_normal(outmaps), dtype)
    return mod


def randn(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("cls, name", cases, ids=ids)
def test_input_and_parameter_gradients_match_finite_differences(cls, name):
    mod = build(cls, name, np.float64)
    checkModuleGrads(mod, randn((2, 4) + classes[cls][1], 0, np.float64))


def torchReference(mod, x, g):
    """Output and gradients (input, W, b) of the torch op with mod's weights, for input x and output gradient g."""
    torch = pytest.importorskip("torch")
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(toHost(mod.vars["W"].data)).requires_grad_()
    tb = torch.from_numpy(toHost(mod.vars["b"].data)).requires_grad_() if "b" in mod.vars else None
    extra = {"output_padding": mod.outPad} if hasattr(mod, "outPad") else {}
    op = getattr(torch.nn.functional, classes[type(mod)][0])
    ty = op(tx, tw, tb, stride=mod.stride, padding=mod.pad, dilation=mod.dilation, groups=mod.groups, **extra)
    ty.backward(torch.from_numpy(g))
    return ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy()


@pytest.mark.parametrize("cls, name", cases, ids=ids)
def test_outputs_and_all_gradients_match_torch(cls, name):
    mod = build(cls, name)
    x = randn((3, 4) + classes[cls][2], 1)
    y = toHost(mod(toDevice(x)))
    g = randn(y.shape, 2)
    gx = toHost(mod.backward(toDevice(g)))
    ty, tgx, tgw, tgb = torchReference(mod, x, g)
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx, tgx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), tgw, rtol=1e-5, atol=1e-4)
    if tgb is not None:
        np.testing.assert_allclose(toHost(mod.vars["b"].grad), tgb, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("cls, name", [case for case in cases if case[0].__name__.startswith("Conv")],
                         ids=[i for i in ids if i.startswith("Conv")])
def test_eval_mode_output_matches_train_mode_even_lowered_in_chunks(cls, name):
    mod = build(cls, name)
    x = toDevice(randn((5, 4) + classes[cls][2], 3))
    train = toHost(mod(x)).copy()
    mod.evalChunkBytes = 1  # one sample per chunk, where the eval path splits the batch
    np.testing.assert_allclose(toHost(mod.evalMode()(x)), train, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls, name", cases, ids=ids)
def test_eval_mode_backward_after_a_chunked_forward_matches_torch(cls, name):
    """Saliency maps and input gradients of a frozen net: backward after an eval-mode forward, which lowers
    a convolution's batch a sample at a time on NumPy and keeps no whole column matrix."""
    mod = build(cls, name).evalMode()
    mod.evalChunkBytes = 1
    x = randn((5, 4) + classes[cls][2], 6)
    y = toHost(mod(toDevice(x)))
    g = randn(y.shape, 7)
    ty, tgx, tgw, tgb = torchReference(mod, x, g)
    np.testing.assert_allclose(toHost(mod.backward(toDevice(g))), tgx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), tgw, rtol=1e-5, atol=1e-4)
    if tgb is not None:
        np.testing.assert_allclose(toHost(mod.vars["b"].grad), tgb, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-5)


def test_eval_mode_backward_works_on_a_batch_the_default_chunk_size_splits():
    mod = Conv2D(3, 4, 3, pad=1).evalMode()
    x = randn((40, 3, 32, 32), 8)  # 108 KiB of columns a sample: 4 MiB chunks of 37 samples on NumPy
    g = randn((40, 4, 32, 32), 9)
    y = mod(toDevice(x))
    assert y.shape == g.shape and (isCuda or not mod.colsWhole)  # the GPU lowers the batch at once
    gx = toHost(mod.backward(toDevice(g)))
    _, tgx, tgw, tgb = torchReference(mod, x, g)
    np.testing.assert_allclose(gx, tgx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), tgw, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(toHost(mod.vars["b"].grad), tgb, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("cls", classes)
def test_parameter_gradients_accumulate_and_input_gradient_is_skipped_when_not_needed(cls):
    mod = build(cls, "groups2")
    x = toDevice(randn((2, 4) + classes[cls][2], 0))
    g = toDevice(randn(mod(x).shape, 1))
    assert mod.backward(g, updGrad=False) is None
    once = toHost(mod.vars["W"].grad).copy(), toHost(mod.vars["b"].grad).copy()
    mod(x)
    mod.backward(g)
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), 2 * once[0], rtol=1e-6)
    np.testing.assert_allclose(toHost(mod.vars["b"].grad), 2 * once[1], rtol=1e-6)


@pytest.mark.parametrize("cls", classes)
def test_rereads_a_gradient_array_refilled_between_backward_passes(cls):
    mod = build(cls, "stride2-pad1")
    x = toDevice(randn((2, 4) + classes[cls][2], 0))
    g = toDevice(randn(mod(x).shape, 1))
    mod.backward(g)
    first = toHost(mod.vars["W"].grad).copy()
    mod.zeroGradParams()
    g *= 2  # the same array with new values, as a cost reusing its gradient buffer would pass
    mod(x)
    gx = toHost(mod.backward(g))
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), 2 * first, rtol=1e-6)
    mod(x)
    np.testing.assert_allclose(toHost(mod.backward(g)), gx, rtol=1e-6)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_im2col_and_col2im_are_adjoint_with_stride_pad_and_dilation(nd):
    x = randn((2, 3) + (7, 6, 5)[:nd], 0, np.float64)
    geometry = (3, 2, 2)[:nd], (2, 1, 3)[:nd], (1, 0, 2)[:nd], (1, 2, 2)[:nd]
    cols = im2col(toDevice(x), *geometry)
    c = randn(cols.shape, 1, np.float64)
    back = toHost(col2im(toDevice(c), x.shape, *geometry))
    np.testing.assert_allclose(np.vdot(toHost(cols), c), np.vdot(x, back), rtol=1e-12)


@pytest.mark.parametrize("cls", classes)
def test_saved_model_rebuilds_from_its_blueprint_with_the_same_output(cls, tmp_path):
    mod = build(cls, "depthwise-stride-dilation")
    x = toDevice(randn((2, 4) + classes[cls][2], 4))
    mod.save(tmp_path / "m.h5")
    copy = loadModel(tmp_path / "m.h5")
    assert type(copy) is cls and copy.getBlueprint() == json.loads(json.dumps(mod.getBlueprint()))
    assert (copy.stride, copy.pad, copy.dilation, copy.groups) == ((2,) * cls.nd, (2,) * cls.nd, (2,) * cls.nd, 4)
    np.testing.assert_array_equal(toHost(copy(x)), toHost(mod(x)))


@pytest.mark.parametrize("cls", [c for c in classes if c.__name__.startswith("Deconv")])
def test_deconv_blueprint_keeps_outpad(cls):
    mod = build(cls, "outPad")
    copy = buildFromBlueprint(json.loads(json.dumps(mod.getBlueprint())))
    assert copy.outPad == mod.outPad == perAxis(1, 2, 0)(cls.nd)


@pytest.mark.parametrize("cls", classes)
def test_weight_layout_follows_torch_with_groups(cls):
    W = cls(4, 6, 3, groups=2).vars["W"]
    assert W.shape == ((4, 3) if cls.__name__.startswith("Deconv") else (6, 2)) + (3,) * cls.nd


@pytest.mark.parametrize("cls", classes)
def test_rejects_wrong_channel_count_naming_expected_and_got(cls):
    shape = (2, 3) + classes[cls][2]
    with pytest.raises(ShapeError, match=rf"{cls.__name__} 'c': expected input of shape \(batch, 4, .*\), "
                                         rf"got \({', '.join(map(str, shape))}\)"):
        cls(4, 2, 3, name="c")(toDevice(np.zeros(shape, np.float32)))


@pytest.mark.parametrize("cls", classes)
def test_rejects_input_of_the_wrong_rank(cls):
    shape = (2, 4) + classes[cls][2] + (3,)
    with pytest.raises(ShapeError, match=rf"expected input of shape \(batch, 4, .*\), got \({shape[0]}, 4,"):
        cls(4, 2, 3)(toDevice(np.zeros(shape, np.float32)))


@pytest.mark.parametrize("cls", classes)
def test_rejects_maps_not_divisible_by_groups_naming_both(cls):
    with pytest.raises(ValueError, match=r"divisible by groups=3, got inmaps=4, outmaps=6"):
        cls(4, 6, 3, groups=3)


@pytest.mark.parametrize("cls", classes)
@pytest.mark.parametrize("arg", [dict(dilation=0), dict(stride=(1,) * 4), dict(pad=-1), dict(size=2.5),
                                 dict(size=True)])
def test_rejects_bad_geometry_arguments(cls, arg):
    with pytest.raises(ValueError, match=r"must be an int or an \(.*\) .* of ints >= \d, got"):
        cls(4, 2, **{"size": 3, **arg})


@pytest.mark.parametrize("cls", classes)
def test_rejects_groups_that_are_not_a_positive_integer(cls):
    with pytest.raises(ValueError, match="groups must be a positive integer, got 0"):
        cls(4, 2, 3, groups=0)
