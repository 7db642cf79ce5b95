"""The benchmark's networks, described once as layer lists and built in both frameworks.

A layer is a tuple: ("linear", insize, outsize), ("conv", inmaps, outmaps) (3x3, pad 1), ("bn", maps),
("relu",), ("maxpool", size), ("avgpool", size), ("flatten",). ``buildOurs`` and ``buildTorch`` walk the
same list, so the two networks cannot drift apart, and ``copyWeights`` makes the PyTorch one start
from macrobatch's initial weights (and running statistics).
"""
from typing import NamedTuple

import numpy

from macrobatch.engine import toHost
from macrobatch.modules import Activation, AvgPool2D, BatchNorm2D, Conv2D, Flatten, Linear, MaxPool2D, Sequential


class ModelSpec(NamedTuple):
    title: str
    inshape: tuple
    layers: tuple


def _convBlock(inmaps, outmaps, batchNorm):
    return (("conv", inmaps, outmaps),) + ((("bn", outmaps),) if batchNorm else ()) + (("relu",),)


specs = {
    "mlp": ModelSpec("MLP 784-1024-1024-10", (784,), (
        ("linear", 784, 1024), ("relu",), ("linear", 1024, 1024), ("relu",), ("linear", 1024, 10))),
    "lenet": ModelSpec("LeNet-28", (1, 28, 28), (
        *_convBlock(1, 32, False), ("maxpool", 2), *_convBlock(32, 64, False), ("maxpool", 2),
        ("flatten",), ("linear", 3136, 128), ("relu",), ("linear", 128, 10))),
    "cnnbn": ModelSpec("CNN-BN-32", (3, 32, 32), (
        *_convBlock(3, 32, True), ("maxpool", 2), *_convBlock(32, 64, True), ("maxpool", 2),
        *_convBlock(64, 128, True), ("avgpool", 8), ("flatten",), ("linear", 128, 10))),
}


def buildOurs(spec):
    """A macrobatch Sequential for spec (weights drawn by macrobatch's default init, from its seed)."""
    makers = {"linear": lambda i, o: Linear(i, o), "conv": lambda i, o: Conv2D(i, o, 3, pad=1),
              "bn": BatchNorm2D, "relu": lambda: Activation("relu"), "maxpool": MaxPool2D,
              "avgpool": AvgPool2D, "flatten": Flatten}
    return Sequential(*(makers[kind](*args) for kind, *args in spec.layers))


def buildTorch(spec):
    """The same network as a torch.nn.Sequential (with PyTorch's own init until copyWeights)."""
    from torch import nn
    makers = {"linear": nn.Linear, "conv": lambda i, o: nn.Conv2d(i, o, 3, padding=1), "bn": nn.BatchNorm2d,
              "relu": nn.ReLU, "maxpool": nn.MaxPool2d, "avgpool": nn.AvgPool2d, "flatten": nn.Flatten}
    return nn.Sequential(*(makers[kind](*args) for kind, *args in spec.layers))


def copyWeights(ours, theirs):
    """Copy every parameter and running statistic of our network into the PyTorch one, in place.
    Our Linear W is (insize, outsize), torch's weight its transpose; Conv2D weights share the layout;
    BatchNorm2D scale/bias are torch's weight/bias."""
    import torch

    def put(tensor, ary):
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(numpy.ascontiguousarray(toHost(ary))))

    for mod, tmod in zip(ours.modules, theirs):
        if isinstance(mod, Linear):
            put(tmod.weight, toHost(mod.vars["W"].data).T)
            put(tmod.bias, mod.vars["b"].data)
        elif isinstance(mod, Conv2D):
            put(tmod.weight, mod.vars["W"].data)
            put(tmod.bias, mod.vars["b"].data)
        elif isinstance(mod, BatchNorm2D):
            put(tmod.weight, mod.vars["scale"].data)
            put(tmod.bias, mod.vars["bias"].data)
            put(tmod.running_mean, mod.attrs["mean"])
            put(tmod.running_var, mod.attrs["var"])


def linearSizes(spec):
    """(insize, outsize) of every Linear layer, in order."""
    return [tuple(args) for kind, *args in spec.layers if kind == "linear"]


def mlpStepFlops(spec, batch):
    """FLOPs of the GEMMs of one training step of an all-Linear network, F = 2 N sum(in * out) forward:
    backward computes every weight gradient (F) and every input gradient but the first layer's
    (F - 2 N in0 out0), so a step is 3 F - 2 N in0 out0. Elementwise work and the update are not counted."""
    sizes = linearSizes(spec)
    forward = 2 * batch * sum(i * o for i, o in sizes)
    return 3 * forward - 2 * batch * sizes[0][0] * sizes[0][1]
