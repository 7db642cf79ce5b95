import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules import Activation, Linear, Sequential, loadModel
from macrobatch.modules.concat import Concat
from macrobatch.modules.graph import Graph
from macrobatch.modules.node import Node
from macrobatch.modules.parallel import Parallel
from macrobatch.modules.split import Split


def test_parallel_on_a_list_gradients_match_finite_differences():
    x = Node()
    parts = Node(Split(1, [2, 3]), x)
    branches = Node(Parallel(Linear(2, 4), Sequential(Linear(3, 2), Activation("tanh"))), [parts[0], parts[1]])
    net = Graph(x, Node(Concat(1), branches))
    checkModuleGrads(net.cast(np.float64), np.random.default_rng(0).standard_normal((3, 5)))


def test_shared_parallel_gradients_match_finite_differences():
    net = Sequential(Parallel(Linear(5, 4), Linear(5, 2), Activation("tanh"), shared=True), Concat(1))
    checkModuleGrads(net.cast(np.float64), np.random.default_rng(0).standard_normal((3, 5)))


def test_parallel_outputs_are_the_branch_outputs_in_order():
    first, second = Linear(3, 2), Linear(4, 1)
    net = Parallel(first, second)
    xs = [toDevice(np.ones((2, 3), np.float32)), toDevice(np.ones((2, 4), np.float32))]
    ys = net(xs)
    np.testing.assert_array_equal(toHost(ys[0]), toHost(first(xs[0])))
    np.testing.assert_array_equal(toHost(ys[1]), toHost(second(xs[1])))
    assert net[1] is second and len(net) == 2 and list(net.getVariables())[:2] == ["0.W", "0.b"]


def test_parallel_round_trips_through_load_model(tmp_path):
    net = Sequential(Parallel(Linear(3, 2, name="a"), Activation("relu"), shared=True), Concat(1))
    net.save(tmp_path / "m.h5")
    rebuilt = loadModel(tmp_path / "m.h5")
    assert rebuilt[0].shared and [m.name for m in rebuilt[0]] == ["a", "1"]
    x = toDevice(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    np.testing.assert_array_equal(toHost(rebuilt(x)), toHost(net(x)))


def test_parallel_rejects_a_wrong_number_of_inputs():
    with pytest.raises(ShapeError, match=r"Parallel: expected a list of 2 arrays, got an input of shape \[\(2, 3\)\]"):
        Parallel(Linear(3, 2), Linear(3, 2))([toDevice(np.zeros((2, 3), np.float32))])
    with pytest.raises(ValueError, match="Parallel needs at least one module"):
        Parallel()
