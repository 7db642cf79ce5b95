import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules import loadModel
from macrobatch.modules.graph import Graph
from macrobatch.modules.linear import Linear
from macrobatch.modules.mul import Mul
from macrobatch.modules.node import Node
from macrobatch.modules.split import Split


@pytest.mark.parametrize("picks", [[0, 1], [0, 0], [2, 0, 1]])
def test_mul_gradients_match_finite_differences(picks):
    x = Node()
    parts = Node(Split(1, 3), Node(Linear(4, 6), x))
    y = Node(Mul(), [parts[i] for i in picks])
    checkModuleGrads(Graph(x, y).cast(np.float64), np.random.default_rng(0).standard_normal((3, 4)))


def test_mul_matches_torch_mul_with_zeros_in_the_inputs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3)]
    xs[1][0, 0] = 0
    mod = Mul()
    y = mod([toDevice(x) for x in xs])
    g = rng.standard_normal(y.shape).astype(np.float32)
    gxs = mod.backward(toDevice(g))
    txs = [torch.from_numpy(x).requires_grad_() for x in xs]
    ty = torch.mul(torch.mul(txs[0], txs[1]), txs[2])
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(toHost(y), ty.detach().numpy(), rtol=1e-6, atol=1e-7)
    for gx, tx in zip(gxs, txs):
        np.testing.assert_allclose(toHost(gx), tx.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_mul_round_trips_through_load_model(tmp_path):
    Mul(name="gate").save(tmp_path / "m.h5")
    rebuilt = loadModel(tmp_path / "m.h5")
    assert type(rebuilt) is Mul and rebuilt.name == "gate"
    np.testing.assert_array_equal(toHost(rebuilt([toDevice(np.full(3, 2, np.float32))] * 3)), 8)


def test_mul_rejects_inputs_of_different_shapes():
    with pytest.raises(ShapeError, match=r"Mul: inputs must have one shape, got \[\(2, 3\), \(3, 2\)\]"):
        Mul()([toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((3, 2), np.float32))])
