import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules import loadModel
from macrobatch.modules.add import Add
from macrobatch.modules.graph import Graph
from macrobatch.modules.linear import Linear
from macrobatch.modules.node import Node
from macrobatch.modules.split import Split


def test_add_gradients_match_finite_differences_with_a_repeated_input():
    x = Node()
    parts = Node(Split(1, 2), x)
    y = Node(Add(), [parts[0], Node(Linear(6, 3), x), parts[1], parts[0]])
    checkModuleGrads(Graph(x, y).cast(np.float64), np.random.default_rng(0).standard_normal((3, 6)))


def test_add_matches_torch_add():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3)]
    txs = [torch.from_numpy(x).requires_grad_() for x in xs]
    ty = torch.add(torch.add(txs[0], txs[1]), txs[2])
    mod = Add()
    np.testing.assert_allclose(toHost(mod([toDevice(x) for x in xs])), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    g = rng.standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    for gx, tx in zip(mod.backward(toDevice(g)), txs):
        np.testing.assert_allclose(toHost(gx), tx.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_add_does_not_write_into_its_inputs():
    a, b = toDevice(np.ones((2, 2), np.float32)), toDevice(np.full((2, 2), 2, np.float32))
    Add()([a, b, b])
    np.testing.assert_array_equal(toHost(a), 1)
    np.testing.assert_array_equal(toHost(b), 2)


def test_add_round_trips_through_load_model(tmp_path):
    Add(name="sum").save(tmp_path / "m.h5")
    rebuilt = loadModel(tmp_path / "m.h5")
    assert type(rebuilt) is Add and rebuilt.name == "sum"
    np.testing.assert_array_equal(toHost(rebuilt([toDevice(np.ones(3, np.float32))] * 2)), 2)


def test_add_rejects_inputs_of_different_shapes():
    with pytest.raises(ShapeError, match=r"Add: inputs must have one shape, got \[\(2, 3\), \(2, 4\)\]"):
        Add()([toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((2, 4), np.float32))])
    with pytest.raises(ShapeError, match=r"Add: expected a list of arrays, got 0"):
        Add()([])
