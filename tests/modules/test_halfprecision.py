"""Every module computes in float16 (on either backend) and in bfloat16 (on NumPy) what it computes in
float32, within the 16-bit dtype's precision (the halfParity fixture states the tolerance), forward and
backward."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules import (RNN, Activation, Add, AvgPool1D, AvgPool2D, AvgPool3D, BatchNorm, BatchNorm1D,
                                BatchNorm2D, BatchNorm3D, Concat, Conv1D, Conv2D, Conv3D, Deconv1D, Deconv2D,
                                Deconv3D, Dropout, Dropout2D, Embedder, Flatten, GlobalAvgPool, Graph, GroupNorm,
                                Identity, InstanceNorm2D, LayerNorm, Linear, MaxPool1D, MaxPool2D, MaxPool3D, Mul,
                                Node, Pad2D, Parallel, PRelu, Reshape, Sequential, SoftMax, Split, Transpose,
                                Upsample2D)
from macrobatch.modules.module import Module


def offset(shape, mean, seed=0):
    """Data far from zero (mean + 3 * standard normal; halfParity rounds it to its 16-bit dtype): centring
    must happen in float32."""
    return mean + 3 * np.random.default_rng(seed).standard_normal(shape)


def residual():
    x = Node()
    h = Node(Activation("relu"), Node(Linear(5, 5), x))
    return Graph(x, Node(Add(), [Node(Linear(5, 5), h), x]))


def twoInTwoOut():
    a, b = Node(), Node()
    joined = Node(Linear(7, 4), Node(Concat(1), [a, b]))
    gated = Node(Mul(), [joined, Node(Linear(4, 4), b)])
    return Graph([a, b], [gated, Node(Split(1, [1, 3]), gated)[1]])


# id -> (module factory, inputs (a shape, a list of shapes or an array), fixture options). Sizes where
# float16 would fail without float32 sums: a sum of squares past 65504 (16384 values of N(0, 9) per
# statistic), a long sum losing the 11-bit mantissa (an Embedder row summed from ~1600 rows), a window sum
# past 65504 (256 values near 500). roundings 8 + n: n terms summed in 16 bits (a convolution's kernel
# taps in col2im, an RNN's steps per layer)
cases = {
    "Linear": (lambda: Linear(512, 8), (16, 512), {}),
    "Conv1D": (lambda: Conv1D(3, 4, 3, pad=1), (2, 3, 9), {}),
    "Conv2D": (lambda: Conv2D(16, 4, 3, stride=2, pad=1), (4, 16, 9, 9), {"roundings": 8 + 9}),
    "Conv2D-groups-dilation": (lambda: Conv2D(4, 4, 3, pad=2, groups=2, dilation=2), (2, 4, 7, 7),
                               {"roundings": 8 + 9}),
    "Conv3D": (lambda: Conv3D(2, 3, 2), (2, 2, 4, 4, 4), {"roundings": 8 + 8}),
    "Deconv1D": (lambda: Deconv1D(3, 4, 3, stride=2), (2, 3, 5), {}),
    "Deconv2D": (lambda: Deconv2D(3, 4, 3, stride=2, pad=1, outPad=1), (2, 3, 4, 4), {"roundings": 8 + 9}),
    "Deconv3D": (lambda: Deconv3D(2, 3, 2, stride=2), (2, 2, 3, 3, 3), {"roundings": 8 + 8}),
    "MaxPool1D": (lambda: MaxPool1D(3, 2, 1), (2, 3, 9), {}),
    "MaxPool2D": (lambda: MaxPool2D(3, 2, 1), (2, 3, 7, 7), {}),
    "MaxPool3D": (lambda: MaxPool3D(2), (2, 2, 4, 4, 4), {}),
    "AvgPool1D": (lambda: AvgPool1D(3, 2, 1), (2, 3, 9), {}),
    "AvgPool2D": (lambda: AvgPool2D(3, 2, 1, countIncludePad=False), (2, 3, 7, 7), {}),
    "AvgPool2D-large-windows": (lambda: AvgPool2D(16), offset((2, 3, 32, 32), 500), {}),
    "AvgPool3D": (lambda: AvgPool3D(2), (2, 2, 4, 4, 4), {}),
    "GlobalAvgPool": (lambda: GlobalAvgPool(), offset((2, 3, 64, 64), 500), {}),
    "BatchNorm": (lambda: BatchNorm(5), offset((4096, 5), 20), {}),
    "BatchNorm-eval": (lambda: BatchNorm(5), (64, 5), {"train": False}),
    "BatchNorm1D": (lambda: BatchNorm1D(3), (64, 3, 5), {}),
    "BatchNorm2D": (lambda: BatchNorm2D(3), (16, 3, 32, 32), {}),
    "BatchNorm2D-eval": (lambda: BatchNorm2D(3), (4, 3, 4, 4), {"train": False}),
    "BatchNorm2D-no-affine": (lambda: BatchNorm2D(3, affine=False), offset((16, 3, 32, 32), 20), {}),
    "BatchNorm3D": (lambda: BatchNorm3D(2), (4, 2, 4, 4, 4), {}),
    "LayerNorm": (lambda: LayerNorm(16384), offset((3, 16384), 20), {}),
    "LayerNorm-no-affine": (lambda: LayerNorm((4, 6), affine=False), (3, 4, 6), {}),
    "GroupNorm": (lambda: GroupNorm(2, 4), (3, 4, 64, 64), {}),
    "InstanceNorm2D": (lambda: InstanceNorm2D(3, affine=True), offset((2, 3, 128, 128), 20), {}),
    "Embedder": (lambda: Embedder(10, 6), np.random.default_rng(0).integers(0, 10, (256, 64)), {}),
    "RNN-lstm-bi-sequences": (lambda: RNN(4, 5, 2, "lstm", "bi", True), (3, 6, 4), {"roundings": 8 + 2 * 6}),
    "RNN-gru-bi": (lambda: RNN(4, 5, 2, "gru", "bi"), (3, 6, 4), {"roundings": 8 + 2 * 6}),
    "RNN-relu": (lambda: RNN(4, 5, 1, "relu"), (3, 6, 4), {"roundings": 8 + 6}),
    "RNN-tanh-dropout": (lambda: RNN(4, 5, 2, "tanh", "bi", True, dropout=0.3), (3, 6, 4),
                         {"roundings": 8 + 2 * 6}),
    "Activation": (lambda: Activation("gelu"), (4, 3, 5), {}),  # each activation: test_activation
    "PRelu": (lambda: PRelu(3), (64, 3, 4, 4), {}),
    "SoftMax": (lambda: SoftMax(), offset((4, 4096), 100), {}),
    "Dropout": (lambda: Dropout(0.3), (4, 10), {}),
    "Dropout-eval": (lambda: Dropout(0.3), (4, 10), {"train": False}),
    "Dropout2D": (lambda: Dropout2D(0.3), (4, 3, 2, 2), {}),
    "Flatten": (lambda: Flatten(), (2, 3, 2, 2), {}),
    "Reshape": (lambda: Reshape((6, 2)), (2, 3, 4), {}),
    "Transpose": (lambda: Transpose((0, 2, 1)), (2, 3, 4), {}),
    "Pad2D-constant": (lambda: Pad2D(1, "constant", 0.5), (2, 3, 4, 4), {}),
    "Pad2D-reflect": (lambda: Pad2D((1, 2, 2, 1), "reflect"), (2, 3, 4, 4), {}),
    "Pad2D-replicate": (lambda: Pad2D(2, "replicate"), (2, 3, 4, 4), {}),
    "Identity": (lambda: Identity(), (2, 3), {}),
    "Concat": (lambda: Concat(1), [(2, 3), (2, 4)], {}),
    "Split": (lambda: Split(1, [1, 3]), (2, 4), {}),
    "Add": (lambda: Add(), [(2, 3), (2, 3), (2, 3)], {}),
    "Mul": (lambda: Mul(), [(2, 3), (2, 3), (2, 3)], {}),
    "Upsample2D-nearest": (lambda: Upsample2D(2), (2, 3, 3, 3), {}),
    "Upsample2D-bilinear": (lambda: Upsample2D((2, 3), "bilinear"), (2, 3, 3, 3), {}),
    "Sequential": (lambda: Sequential(Conv2D(3, 4, 3, useBias=False), BatchNorm2D(4), Activation("relu"),
                                      MaxPool2D(2), Flatten(), Linear(16, 3), SoftMax()), (8, 3, 6, 6),
                   {"roundings": 8 + 9}),
    "Parallel": (lambda: Parallel(Linear(3, 2), Linear(4, 2)), [(2, 3), (2, 4)], {}),
    "Parallel-shared": (lambda: Parallel(Linear(3, 2), Activation("tanh"), shared=True), (2, 3), {}),
    "Graph": (residual, (3, 5), {}),
    "Graph-two-in-two-out": (twoInTwoOut, [(2, 3), (2, 4)], {}),
}

# bases that only subclasses complete
abstract = {"Module", "MultiModule", "ElementwiseJoin", "ConvND", "DeconvND", "PoolND", "Pool1D", "Pool2D", "Pool3D",
            "AvgPoolND", "MaxPoolND"}


def test_the_table_covers_every_module_class():
    ours = {name for name, cls in Module.registry.items() if cls.__module__.startswith("macrobatch.modules.")}
    covered = {type(factory()).__name__ for factory, _, _ in cases.values()}
    inferenceOnly = {"Int8Linear", "Int8Conv"}  # no backward to compare; tests/deploy/test_quantize.py checks them
    assert ours - abstract - inferenceOnly == covered


@pytest.mark.parametrize("case", cases.values(), ids=cases.keys())
def test_module_in_16_bits_matches_float32(case, halfDtype, halfParity):
    factory, inputs, options = case
    halfParity(factory, inputs, halfDtype, **options)


@pytest.mark.parametrize("factory", [lambda: BatchNorm2D(3), lambda: BatchNorm2D(3, affine=False)])
def test_batchnorm_cast_to_16_bits_keeps_float32_running_statistics_and_takes_16_bit_data(factory, halfDtype):
    mod = factory().cast(halfDtype)
    assert mod.attrs["mean"].dtype == mod.attrs["var"].dtype == np.float32 and mod.dtype == halfDtype
    assert mod(toDevice(np.ones((2, 3, 2, 2)), halfDtype)).dtype == halfDtype
    assert mod.cast(np.float64).attrs["mean"].dtype == np.float64 and mod.dtype == np.float64


def test_16_bit_module_in_a_sequential_keeps_its_weights_and_float32_running_statistics_through_save_and_load(
        tmp_path, halfDtype):
    net = Sequential(Linear(3, 4), BatchNorm(4)).cast(halfDtype)
    net(toDevice(offset((8, 3), 2), halfDtype))
    net.save(tmp_path / "net.h5")
    loaded = Sequential(Linear(3, 4), BatchNorm(4)).cast(halfDtype).load(tmp_path / "net.h5")
    assert loaded[0].vars["W"].dtype == halfDtype
    np.testing.assert_array_equal(toHost(loaded[0].vars["W"].data), toHost(net[0].vars["W"].data))
    for key in ("mean", "var"):
        assert loaded[1].attrs[key].dtype == np.float32
        np.testing.assert_array_equal(toHost(loaded[1].attrs[key]), toHost(net[1].attrs[key]))
