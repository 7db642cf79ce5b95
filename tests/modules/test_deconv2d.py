"""What is particular to Deconv2D; gradients, torch parity, blueprints and bad input for every geometry
are checked in test_convnd.py."""
import numpy as np

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules.conv2d import Conv2D
from macrobatch.modules.deconv2d import Deconv2D


def test_deconv2d_is_the_adjoint_of_conv2d_with_the_same_weights():
    # Deconv2D maps (5, 3) back to the (9, 11) input of a Conv2D with this geometry: its forward pass is
    # that convolution's input gradient, and its input gradient that convolution's forward pass
    geometry = dict(size=(3, 2), stride=(2, 3), pad=(1, 0), dilation=(1, 2), groups=2)
    conv = Conv2D(6, 4, **geometry, useBias=False)
    deconv = Deconv2D(4, 6, **geometry, outPad=(0, 2), useBias=False)
    deconv.vars["W"].data[...] = conv.vars["W"].data
    rng = np.random.default_rng(0)
    x = toDevice(rng.standard_normal((2, 6, 9, 11), np.float32))
    g = toDevice(rng.standard_normal((2, 4, 5, 3), np.float32))
    assert conv(x).shape == g.shape
    y = toHost(deconv(g))
    np.testing.assert_allclose(y, toHost(conv.backward(g)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(toHost(deconv.backward(x)), toHost(conv(x)), rtol=1e-5, atol=1e-5)
