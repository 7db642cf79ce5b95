import importlib.util
from pathlib import Path

import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules import Activation, Flatten, Linear, Sequential, loadModel
from macrobatch.modules.add import Add
from macrobatch.modules.concat import Concat
from macrobatch.modules.graph import Graph
from macrobatch.modules.mul import Mul
from macrobatch.modules.node import Node
from macrobatch.modules.split import Split
from macrobatch.modules.summary import summary
from macrobatch.optimizers import Adam

examplePath = Path(__file__).resolve().parents[2] / "examples" / "resnet.py"


def residualMLP(width=5):
    """relu(L2(relu(L1(x))) + x) + L3(x): x feeds three nodes, the first layer's output two."""
    x = Node()
    h = Node(Activation("relu"), Node(Linear(width, width, name="fc1"), x))
    y = Node(Activation("relu"), Node(Add(), [Node(Linear(width, width, name="fc2"), h), x]))
    return Graph(x, Node(Add(), [y, Node(Linear(width, width, name="fc3"), x), h]))


def twoInTwoOut():
    """Inputs a (batch, 3) and b (batch, 4); outputs a Linear of [a, b] gated by b's projection, and a part of it."""
    a, b = Node(), Node()
    joined = Node(Linear(7, 4, name="mix"), Node(Concat(1), [a, b]))
    gated = Node(Mul(), [joined, Node(Linear(4, 4, name="gate"), b)])
    parts = Node(Split(1, [1, 3]), gated)
    return Graph([a, b], [gated, parts[1]])


def test_graph_with_fan_out_and_fan_in_gradients_match_finite_differences():
    checkModuleGrads(residualMLP().cast(np.float64), np.random.default_rng(0).standard_normal((4, 5)))


def test_nested_graph_with_two_inputs_and_two_outputs_gradients_match_finite_differences():
    x = Node()
    parts = Node(Split(1, [3, 4]), x)
    inner = Node(twoInTwoOut(), [parts[0], parts[1]])
    y = Node(Concat(1), [inner[1], inner[0]])
    checkModuleGrads(Graph(x, y).cast(np.float64), np.random.default_rng(0).standard_normal((3, 7)))


def test_shared_weights_gradients_add_up():
    x = Node()
    first, second = Linear(4, 4), Linear(4, 4)
    second.vars["W"] = first.vars["W"]
    net = Graph(x, Node(Add(), [Node(first, x), Node(second, Node(Activation("tanh"), x))])).cast(np.float64)
    assert len(net.getVariables()) == 3
    checkModuleGrads(net, np.random.default_rng(0).standard_normal((3, 4)))


def test_residual_graph_matches_torch():
    torch = pytest.importorskip("torch")
    net = residualMLP()
    layers = {name: torch.nn.Linear(5, 5) for name in ("fc1", "fc2", "fc3")}
    with torch.no_grad():
        for name, layer in layers.items():
            layer.weight.copy_(torch.from_numpy(toHost(net.children()[name].vars["W"].data).T.copy()))
            layer.bias.copy_(torch.from_numpy(toHost(net.children()[name].vars["b"].data)))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    g = rng.standard_normal((6, 5)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    th = torch.relu(layers["fc1"](tx))
    ty = torch.relu(layers["fc2"](th) + tx) + layers["fc3"](tx) + th
    ty.backward(torch.from_numpy(g))
    y = net(toDevice(x))
    gx = net.backward(toDevice(g))
    np.testing.assert_allclose(toHost(y), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(toHost(gx), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    for name, layer in layers.items():
        np.testing.assert_allclose(toHost(net.getVariables()[name + ".W"].grad), layer.weight.grad.numpy().T,
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(toHost(net.getVariables()[name + ".b"].grad), layer.bias.grad.numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_graph_round_trips_through_load_model(tmp_path):
    net = twoInTwoOut()
    net.save(tmp_path / "m.h5")
    rebuilt = loadModel(tmp_path / "m.h5")
    assert type(rebuilt) is Graph and list(rebuilt.children()) == list(net.children())
    rng = np.random.default_rng(0)
    xs = [toDevice(rng.standard_normal(shape).astype(np.float32)) for shape in ((2, 3), (2, 4))]
    for a, b in zip(rebuilt(xs), net(xs)):
        np.testing.assert_array_equal(toHost(a), toHost(b))


def test_children_names_variables_modes_and_cast_walk_the_graph():
    net = residualMLP()
    assert list(net.children()) == ["fc1", "1", "fc2", "3", "4", "fc3", "6"]
    assert list(net.getVariables()) == ["fc1.W", "fc1.b", "fc2.W", "fc2.b", "fc3.W", "fc3.b"]
    net.evalMode()
    assert not any(mod.train for _, mod in net.namedModules())
    assert net.cast(np.float64).dtype == np.float64


def test_input_gradient_skipped_when_not_needed_but_parameter_gradients_accumulate():
    net = residualMLP()
    net(toDevice(np.ones((2, 5), np.float32)))
    assert net.backward(toDevice(np.ones((2, 5), np.float32)), updGrad=False) is None
    assert toHost(net.getVariables()["fc1.W"].grad).any()


def test_output_given_no_gradient_contributes_nothing():
    x = Node()
    used, unused = Linear(3, 2, name="used"), Linear(3, 2, name="unused")
    net = Graph(x, [Node(used, x), Node(unused, x)])
    net(toDevice(np.ones((4, 3), np.float32)))
    gx = net.backward([toDevice(np.ones((4, 2), np.float32)), None])
    np.testing.assert_allclose(toHost(gx), np.ones((4, 2)) @ toHost(used.vars["W"].data).T, rtol=1e-6)
    assert not toHost(unused.vars["W"].grad).any() and toHost(used.vars["W"].grad).any()


def test_summary_lists_the_graph_leaves_in_order():
    info = summary(residualMLP(), (5,), batchsize=2)
    assert [row["name"] for row in info["rows"]][:3] == ["fc1", "1", "fc2"]
    assert info["outputShape"] == (2, 5) and info["paramCount"] == 3 * 30


def loadExample():
    spec = importlib.util.spec_from_file_location("resnetExample", examplePath)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resnet_block_trains_and_round_trips_through_load_model(tmp_path):
    net = Sequential(loadExample().basicBlock(4, name="block"), Flatten(), Linear(4 * 4 * 4, 3))
    rng = np.random.default_rng(0)
    hostX = rng.standard_normal((32, 4, 4, 4)).astype(np.float32)
    x = toDevice(hostX)
    target = toDevice((hostX[:, 0].mean(axis=(1, 2)) > 0).astype(np.int64) + (hostX[:, 1].mean(axis=(1, 2)) > 0))
    cost, optimizer = CrossEntropy(), Adam(learnRate=1e-2)
    optimizer.setupOn(net)
    losses = []
    for _ in range(10):
        error, grad = cost(net(x), target)
        optimizer.zeroGradParams()
        net.backward(grad)
        optimizer.update()
        losses.append(float(error))
    assert losses[-1] < 0.5 * losses[0]
    net.save(tmp_path / "resnet.h5")
    rebuilt = loadModel(tmp_path / "resnet.h5").evalMode()
    assert list(rebuilt.getVariables()) == list(net.getVariables())
    np.testing.assert_array_equal(toHost(rebuilt(x)), toHost(net.evalMode()(x)))


def test_cycle_is_refused():
    x = Node()
    a = Node(Linear(3, 3), x)
    b = Node(Linear(3, 3), a)
    a.parents.append((b, None))
    with pytest.raises(ValueError, match="Graph: the nodes form a cycle through Node of Linear"):
        Graph(x, b)


def test_node_not_reachable_from_the_inputs_is_refused():
    x, stray = Node(), Node()
    with pytest.raises(ValueError, match="input Node is not reachable from the inputs"):
        Graph(x, Node(Add(), [Node(Linear(3, 3), x), stray]))
    with pytest.raises(ValueError, match="Node of Linear is not reachable from the inputs"):
        Graph(x, Node(Add(), [x, Node(Linear(3, 3))]))
    with pytest.raises(ValueError, match="input 1 does not lead to any output"):
        Graph([x, stray], Node(Linear(3, 3), x))


def test_module_in_two_nodes_is_refused():
    x, lin = Node(), Linear(3, 3)
    with pytest.raises(ValueError, match="a module sits in two nodes"):
        Graph(x, Node(lin, Node(lin, x)))


def test_mismatched_shapes_raise_the_error_of_the_module_that_refused_them():
    x = Node()
    net = Graph(x, Node(Add(), [Node(Linear(3, 4), x), Node(Linear(3, 5), x)]))
    with pytest.raises(ShapeError, match=r"Add '2': inputs must have one shape, got \[\(2, 4\), \(2, 5\)\]"):
        net(toDevice(np.zeros((2, 3), np.float32)))
    with pytest.raises(ShapeError, match=r"Graph: expected one array, got an input of shape \[\(2, 3\)\]"):
        net([toDevice(np.zeros((2, 3), np.float32))])
    with pytest.raises(ShapeError, match=r"Graph: expected a list of 2 arrays, got an input of shape \(2, 3\)"):
        twoInTwoOut()(toDevice(np.zeros((2, 3), np.float32)))


def test_selecting_an_output_a_node_does_not_have_is_refused():
    x = Node()
    net = Graph(x, Node(Linear(3, 3), x)[1])
    with pytest.raises(ShapeError, match=r"Node of Linear '0'\[1\] selects an output it does not have"):
        net(toDevice(np.zeros((2, 3), np.float32)))
