"""What is particular to Deconv3D; gradients, torch parity, blueprints and bad input for every geometry
are checked in test_convnd.py."""
import numpy as np

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules.deconv3d import Deconv3D


def test_deconv3d_with_stride_equal_to_size_paints_one_weighted_block_per_voxel():
    mod = Deconv3D(3, 2, (2, 3, 2), stride=(2, 3, 2))
    mod.vars["b"].data[...] = toDevice(np.array([0.5, -1]), mod.dtype)
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 3, 4)).astype(np.float32)
    W = toHost(mod.vars["W"].data)
    # output block (d, h, w) of map o is sum_c x[c, d, h, w] * W[c, o] + b[o]
    blocks = np.einsum("ncdhw,coijk->nodihjwk", x, W).reshape(2, 2, 4, 9, 8)
    blocks += np.array([0.5, -1], np.float32).reshape(1, 2, 1, 1, 1)
    np.testing.assert_allclose(toHost(mod(toDevice(x))), blocks, rtol=1e-5, atol=1e-5)
