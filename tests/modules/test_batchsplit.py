"""BatchNorm and Activation with the batch split over worker threads (Module.splitBatch, forced to 3 parts by
the threeParts fixture): the per-part passes and the per-map sums added over the parts match PyTorch. On CUDA
nothing is split, so these run the kernels against the same references."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules.activation import Activation
from macrobatch.modules.batchnorm1d import BatchNorm1D
from macrobatch.modules.batchnorm2d import BatchNorm2D

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("make, ref, shape", [
    (lambda: BatchNorm2D(3, epsilon=1e-3), lambda: torch.nn.BatchNorm2d(3, eps=1e-3), (7, 3, 4, 5)),
    (lambda: BatchNorm1D(4), lambda: torch.nn.BatchNorm1d(4), (7, 4)),
])
def test_batchnorm_batch_split_over_threads_matches_torch(batchNormParity, threeParts, make, ref, shape):
    batchNormParity(make(), ref(), shape, atol=1e-4)


@pytest.mark.parametrize("activation, ref", [
    ("relu", lambda x: torch.relu(x)),
    ("gelu", lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
    ("leakyRelu", lambda x: torch.nn.functional.leaky_relu(x, 0.01)),
])
def test_activation_batch_split_over_threads_matches_torch(threeParts, activation, ref):
    rng = np.random.default_rng(0)
    x, g = (rng.standard_normal((7, 3, 4, 5)).astype(np.float32) for _ in range(2))
    mod = Activation(activation)
    y = toHost(mod(toDevice(x)))
    gx = toHost(mod.backward(toDevice(g)))
    tx = torch.from_numpy(x).requires_grad_()
    ty = ref(tx)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
