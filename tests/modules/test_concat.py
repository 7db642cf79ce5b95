import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules import loadModel
from macrobatch.modules.concat import Concat
from macrobatch.modules.graph import Graph
from macrobatch.modules.linear import Linear
from macrobatch.modules.node import Node
from macrobatch.modules.split import Split


def test_concat_gradients_match_finite_differences_through_a_graph():
    # the list input is made from one array (split, reordered, one part used twice), so the graph is not the identity
    x = Node()
    parts = Node(Split(1, [2, 3]), x)
    y = Node(Concat(1), [parts[1], Node(Linear(5, 4), x), parts[0], parts[1]])
    checkModuleGrads(Graph(x, y).cast(np.float64), np.random.default_rng(0).standard_normal((3, 5)))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_matches_torch_cat(axis):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    shapes[1] = tuple(5 if i == axis % 3 else n for i, n in enumerate(shapes[1]))
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    mod = Concat(axis)
    y = mod([toDevice(x) for x in xs])
    g = rng.standard_normal(y.shape).astype(np.float32)
    gxs = mod.backward(toDevice(g))
    txs = [torch.from_numpy(x).requires_grad_() for x in xs]
    ty = torch.cat(txs, dim=axis)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(toHost(y), ty.detach().numpy(), rtol=1e-6, atol=1e-7)
    for gx, tx in zip(gxs, txs):
        np.testing.assert_allclose(toHost(gx), tx.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_concat_round_trips_through_load_model(tmp_path):
    mod = Concat(-1, name="join")
    mod.save(tmp_path / "m.h5")
    rebuilt = loadModel(tmp_path / "m.h5")
    assert type(rebuilt) is Concat and rebuilt.axis == -1 and rebuilt.name == "join"
    xs = [toDevice(np.ones((2, 3), np.float32)), toDevice(np.zeros((2, 1), np.float32))]
    np.testing.assert_array_equal(toHost(rebuilt(xs)), toHost(mod(xs)))


def test_concat_rejects_inputs_that_disagree_off_the_axis():
    with pytest.raises(ShapeError, match=r"Concat: inputs must agree on every axis but 1, got shapes \[\(2, 3\), \(4"):
        Concat(1)([toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((4, 3), np.float32))])


def test_concat_rejects_a_single_array_an_axis_out_of_range_and_mixed_dtypes():
    with pytest.raises(ShapeError, match=r"expected a list of arrays, got an input of shape \(2, 3\)"):
        Concat(1)(toDevice(np.zeros((2, 3), np.float32)))
    with pytest.raises(ShapeError, match="axis 2 is out of range for inputs of rank 2"):
        Concat(2)([toDevice(np.zeros((2, 3), np.float32))] * 2)
    with pytest.raises(ShapeError, match="inputs must have one rank"):
        Concat(1)([toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((2, 3, 1), np.float32))])
    with pytest.raises(DtypeError, match=r"inputs must share one dtype, got \['float32', 'float64'\]"):
        Concat(1)([toDevice(np.zeros((2, 3), np.float32)), toDevice(np.zeros((2, 3), np.float64))])


def test_concat_rejects_a_gradient_of_another_shape():
    mod = Concat(1)
    mod([toDevice(np.zeros((2, 3), np.float32))] * 2)
    with pytest.raises(ShapeError, match=r"gradient of shape \(2, 5\) does not match the output of shape \(2, 6\)"):
        mod.backward(toDevice(np.zeros((2, 5), np.float32)))
