"""Inference folds an eval-mode BatchNorm into the convolution before it (Sequential under
withoutActivations): the same outputs as the two layers run apart, the convolution's own weights untouched,
and nothing folded where a backward pass may follow or the pair does not fit."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules import (Activation, BatchNorm1D, BatchNorm2D, BatchNorm3D, Conv1D, Conv2D, Conv3D, Deconv2D,
                                Sequential)
from macrobatch.modules.convnd import ConvND
from macrobatch.modules.int8conv import Int8Conv
from macrobatch.modules.module import withoutActivations

pairs = {"1d": (Conv1D, BatchNorm1D, (9,)), "2d": (Conv2D, BatchNorm2D, (7, 8)), "3d": (Conv3D, BatchNorm3D, (4, 5, 6))}


def trainedStats(norm, rng):
    """Running statistics and affine parameters away from their initial 0/1, so the fold has work to do."""
    for key, values in (("mean", rng.standard_normal(norm.maps)), ("var", rng.uniform(0.5, 2.0, norm.maps))):
        norm.attrs[key][...] = toDevice(values.astype(np.float32))
    if norm.affine:
        norm.vars["scale"].data[...] = toDevice(rng.uniform(0.5, 1.5, norm.maps).astype(np.float32))
        norm.vars["bias"].data[...] = toDevice(rng.standard_normal(norm.maps).astype(np.float32))


@pytest.mark.parametrize("useBias", [True, False], ids=["conv-bias", "no-conv-bias"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("kind", pairs)
def test_the_folded_pair_gives_the_outputs_of_the_two_layers(monkeypatch, kind, groups, affine, useBias):
    convCls, normCls, spatial = pairs[kind]
    rng = np.random.default_rng(0)
    net = Sequential(convCls(4, 6, 3, pad=1, groups=groups, useBias=useBias), normCls(6, affine=affine),
                     Activation("relu"))
    trainedStats(net[1], rng)
    net.evalMode()
    x = toDevice(rng.standard_normal((3, 4) + spatial).astype(np.float32))
    apart = toHost(net(x)).copy()  # keeping activations: no fold
    weights = {name: toHost(v.data).copy() for name, v in net[0].vars.items()}
    arrays = {name: v.data for name, v in net[0].vars.items()}
    calls = []
    fold = ConvND.foldedCall
    monkeypatch.setattr(ConvND, "foldedCall", lambda self, *a: calls.append(1) or fold(self, *a))
    with withoutActivations():
        folded = toHost(net(x))
    assert calls == [1]
    np.testing.assert_allclose(folded, apart, rtol=1e-5, atol=1e-5)
    for name, var in net[0].vars.items():  # the same arrays (an optimizer's flat-buffer views) and values
        assert var.data is arrays[name]
        np.testing.assert_array_equal(toHost(var.data), weights[name])


@pytest.mark.parametrize("case", ["train-mode", "keeps-activations", "deconvolution", "int8", "not-a-batchnorm"])
def test_nothing_is_folded_where_it_does_not_hold(monkeypatch, case):
    calls = []
    monkeypatch.setattr(ConvND, "foldedCall", lambda self, *a: calls.append(1))
    first = {"deconvolution": lambda: Deconv2D(4, 6, 3, pad=1), "int8": lambda: Int8Conv(2, 4, 6, 3, pad=1)}.get(
        case, lambda: Conv2D(4, 6, 3, pad=1))()
    net = Sequential(first, Activation("relu") if case == "not-a-batchnorm" else BatchNorm2D(6))
    if case != "train-mode":
        net.evalMode()
    x = toDevice(np.random.default_rng(1).standard_normal((2, 4, 5, 5)).astype(np.float32))
    if case == "keeps-activations":
        net(x)
    else:
        with withoutActivations():
            net(x)
    assert calls == []
