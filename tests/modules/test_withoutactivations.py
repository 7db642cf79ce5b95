"""withoutActivations: forward passes that keep nothing (inference), and the input gradients no layer keeps."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules import Activation, BatchNorm2D, Conv2D, Flatten, Linear, MaxPool2D, Sequential
from macrobatch.modules.module import withoutActivations


def smallNet():
    return Sequential(Conv2D(2, 4, 3, pad=1), BatchNorm2D(4), Activation("relu"), MaxPool2D(2), Flatten(),
                      Linear(4 * 3 * 3, 5))


def test_forward_without_activations_gives_the_same_output_and_keeps_no_layer_input_or_output():
    x = toDevice(np.random.default_rng(0).standard_normal((3, 2, 6, 6)).astype(np.float32))
    net = smallNet().evalMode()
    kept = toHost(net(x))
    assert all(mod.inData is not None and mod.data is not None for mod in net.modules)
    with withoutActivations():
        released = toHost(net(x))
    np.testing.assert_allclose(released, kept, rtol=1e-5, atol=1e-6)  # the BatchNorm is folded into the conv
    assert all(mod.inData is None and mod.data is None for _, mod in net.namedModules())


def test_backward_after_a_forward_without_activations_raises_naming_the_layer():
    net = smallNet()
    with withoutActivations():
        out = net(toDevice(np.ones((3, 2, 6, 6), np.float32)))
    with pytest.raises(RuntimeError, match="Linear '5': backward needs a forward pass first"):
        net.backward(toDevice(np.ones(out.shape, np.float32)))


def test_forward_keeps_activations_again_after_the_block_even_on_error():
    net = smallNet()
    with pytest.raises(ValueError), withoutActivations():
        raise ValueError
    net(toDevice(np.ones((3, 2, 6, 6), np.float32)))
    assert all(mod.inData is not None for mod in net.modules)


def test_backward_returns_input_gradients_without_keeping_them():
    net = smallNet()
    out = net(toDevice(np.random.default_rng(1).standard_normal((3, 2, 6, 6)).astype(np.float32)))
    gx = net.backward(toDevice(np.ones(out.shape, np.float32)))
    assert gx.shape == (3, 2, 6, 6)
    assert all(mod.grad is None for _, mod in net.namedModules())
