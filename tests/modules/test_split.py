import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost, xp
from macrobatch.engine.errors import ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules import loadModel
from macrobatch.modules.concat import Concat
from macrobatch.modules.graph import Graph
from macrobatch.modules.linear import Linear
from macrobatch.modules.node import Node
from macrobatch.modules.split import Split


def test_split_gradients_match_finite_differences_with_an_unused_part():
    # parts 0 and 2 feed layers, part 1 is left unused: its gradient must be zero
    x = Node()
    parts = Node(Split(1, [2, 1, 3]), Node(Linear(4, 6), x))
    y = Node(Concat(1), [Node(Linear(2, 3), parts[0]), parts[2]])
    checkModuleGrads(Graph(x, y).cast(np.float64), np.random.default_rng(0).standard_normal((3, 4)))


@pytest.mark.parametrize("axis, sections, torchSections", [(1, 3, 2), (1, [1, 4, 1], [1, 4, 1]), (-1, [3, 2], [3, 2])])
def test_split_matches_torch_split(axis, sections, torchSections):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 5)).astype(np.float32)
    mod = Split(axis, sections)
    ys = mod(toDevice(x))
    gs = [rng.standard_normal(y.shape).astype(np.float32) for y in ys]
    gx = mod.backward([toDevice(g) for g in gs])
    tx = torch.from_numpy(x).requires_grad_()
    tys = torch.split(tx, torchSections, dim=axis)
    torch.autograd.backward(tys, [torch.from_numpy(g) for g in gs])
    assert len(ys) == len(tys)
    for y, ty in zip(ys, tys):
        np.testing.assert_allclose(toHost(y), ty.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(toHost(gx), tx.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_split_parts_are_views_and_a_missing_gradient_counts_as_zero():
    x = toDevice(np.arange(12, dtype=np.float32).reshape(2, 6))
    mod = Split(1, 3)
    ys = mod(x)
    assert all(xp.shares_memory(y, x) for y in ys)
    gx = mod.backward([toDevice(np.ones((2, 2), np.float32)), None, toDevice(np.ones((2, 2), np.float32))])
    np.testing.assert_array_equal(toHost(gx), [[1, 1, 0, 0, 1, 1]] * 2)


def test_split_round_trips_through_load_model(tmp_path):
    mod = Split(0, [1, 2])
    mod.save(tmp_path / "m.h5")
    rebuilt = loadModel(tmp_path / "m.h5")
    assert type(rebuilt) is Split and rebuilt.axis == 0 and rebuilt.sections == [1, 2]
    x = toDevice(np.arange(6, dtype=np.float32).reshape(3, 2))
    for a, b in zip(rebuilt(x), mod(x)):
        np.testing.assert_array_equal(toHost(a), toHost(b))


def test_split_rejects_sizes_that_do_not_add_up_and_a_list_input():
    with pytest.raises(ShapeError, match=r"cannot split axis 1 of input shape \(2, 5\) into 2"):
        Split(1, 2)(toDevice(np.zeros((2, 5), np.float32)))
    with pytest.raises(ShapeError, match=r"into sizes \[2, 2\]"):
        Split(1, [2, 2])(toDevice(np.zeros((2, 5), np.float32)))
    with pytest.raises(ShapeError, match="Split: expected one array, got a list"):
        Split(1, 2)([toDevice(np.zeros((2, 4), np.float32))])
    with pytest.raises(ValueError, match="sections must be a positive int or a list of positive sizes"):
        Split(1, [2, 0])


def test_split_rejects_a_gradient_list_of_the_wrong_length():
    mod = Split(1, 2)
    mod(toDevice(np.zeros((2, 4), np.float32)))
    with pytest.raises(ShapeError, match=r"gradient of shape \[\(2, 2\)\] does not match"):
        mod.backward([toDevice(np.zeros((2, 2), np.float32))])
