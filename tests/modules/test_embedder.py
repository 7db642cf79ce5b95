"""Embedder: lookup, the scatter-add of its table gradient, and its place at the head of a network."""
import re

import numpy as np
import pytest

from macrobatch.engine import backend
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, LabelError, ShapeError
from macrobatch.engine.gradcheck import numericGrad
from macrobatch.modules import Linear, Sequential
from macrobatch.modules.embedder import Embedder
from macrobatch.modules.module import loadModel
from macrobatch.modules.rnn import RNN

# repeated indices, so rows that meet in the scatter-add must sum
indices = np.array([[1, 4, 1, 0], [4, 4, 2, 1]], dtype=np.int64)


def checkTableGrad(net, data):
    """The table gradient (backward with updGrad=False, as the Trainer runs it) against finite
    differences of sum(net(data) * R) for a fixed random R."""
    data = toDevice(data)
    weights = toDevice(np.random.default_rng(0).standard_normal(net(data).shape))
    net.zeroGradParams()
    net(data)
    assert net.backward(weights.copy(), updGrad=False) is None
    for key, var in net.getVariables().items():
        numeric = numericGrad(lambda: (net(data) * weights).sum(), var.data)
        np.testing.assert_allclose(toHost(var.grad), numeric, rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.mark.parametrize("data", [indices, indices[0]], ids=["batch-time", "batch"])
def test_embedder_table_gradient_matches_finite_differences(data):
    checkTableGrad(Embedder(6, 3).cast(np.float64), data)


def test_embedder_as_first_layer_of_a_sequence_classifier_matches_finite_differences():
    net = Sequential(Embedder(6, 3), RNN(3, 4, mode="gru"), Linear(4, 2)).cast(np.float64)
    checkTableGrad(net, indices)


def test_embedder_gives_no_input_gradient():
    mod = Embedder(6, 3)
    mod(toDevice(indices))
    assert mod.backward(toDevice(np.ones((2, 4, 3), np.float32))) is None


def checkAgainstTorch(mod, ref, x):
    """mod and torch's Embedding ref (its table copied from mod) on the indices x: lookup and table gradient."""
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(toHost(mod.vars["W"].data)))
    g = np.random.default_rng(2).standard_normal(x.shape + (mod.embsize,)).astype(np.float32)
    ty = ref(torch.from_numpy(x))
    ty.backward(torch.from_numpy(g))
    y = toHost(mod(toDevice(x.astype(np.int32))))
    mod.backward(toDevice(g))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), ref.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_embedder_matches_torch_lookup_and_table_gradient():
    torch = pytest.importorskip("torch")
    checkAgainstTorch(Embedder(7, 5), torch.nn.Embedding(7, 5), np.random.default_rng(1).integers(0, 7, (4, 9)))


def test_embedder_blueprint_and_table_survive_save_and_load_model(tmp_path):
    net = Sequential(Embedder(6, 3), RNN(3, 4), Linear(4, 2))
    net.save(tmp_path / "net.h5")
    loaded = loadModel(tmp_path / "net.h5")
    assert isinstance(loaded[0], Embedder) and loaded.getBlueprint() == net.getBlueprint()
    np.testing.assert_array_equal(toHost(loaded(toDevice(indices))), toHost(net(toDevice(indices))))


outOfRange = [
    pytest.param(np.array([[1, 2, 6]]), 0, r"index 6 at position \(0, 2\) is out of range for a vocabulary of 6",
                 id="too-large"),
    pytest.param(np.array([3, -1]), 0, r"index -1 at position 1 is out of range for a vocabulary of 6", id="negative"),
    pytest.param(np.array([[0, 5], [5, 7]]), 40, r"index 7 at position \(41, 1\) is out of range for a vocabulary of 6",
                 id="offset"),
    # beyond int32: found before the handler casts the block to indexDtype
    pytest.param(np.array([2, 2 ** 40]), 8, r"index 1099511627776 at position 9 is out of range for a vocabulary of 6",
                 id="beyond-int32")]


@pytest.mark.parametrize("where", ["host", "device"])
@pytest.mark.parametrize("data, offset, message", outOfRange)
def test_embedder_check_indices_names_value_and_position_counted_from_offset(where, data, offset, message):
    mod = Embedder(6, 3)
    with pytest.raises(LabelError, match=message):
        mod.checkIndices(data if where == "host" else toDevice(data), offset)


@pytest.mark.parametrize("where", ["host", "device"])
def test_embedder_check_indices_accepts_the_whole_vocabulary(where):
    data = np.array([[0, 5], [3, 5]])
    Embedder(6, 3).checkIndices(data if where == "host" else toDevice(data))


@pytest.mark.skipif(backend.isCuda, reason="on CUDA a call never reads the device back: handlers run checkIndices "
                                           "once per macrobatch and a call only clamps")
@pytest.mark.parametrize("data, offset, message", outOfRange[:2])
def test_embedder_call_rejects_out_of_range_index_on_the_host_backend(data, offset, message):
    with pytest.raises(LabelError, match=message):
        Embedder(6, 3)(toDevice(data))


@pytest.mark.cuda
def test_embedder_call_clamps_out_of_range_indices_into_the_table_on_the_device():
    mod = Embedder(6, 3)
    data = np.array([[1, 6, -2], [9, 0, 5]])
    g = np.random.default_rng(3).standard_normal((2, 3, 3)).astype(np.float32)
    table, clamped = toHost(mod.vars["W"].data), np.clip(data, 0, 5)
    y = toHost(mod(toDevice(data)))
    mod.backward(toDevice(g), updGrad=False)
    expected = np.zeros_like(table)
    np.add.at(expected, clamped, g)
    np.testing.assert_array_equal(y, table[clamped])
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), expected, rtol=1e-6, atol=1e-6)


def test_embedder_rejects_float_indices_naming_the_dtype():
    with pytest.raises(DtypeError, match="expected integer indices, got float32"):
        Embedder(6, 3)(toDevice(np.zeros((2, 3), np.float32)))


def test_embedder_rejects_indices_of_rank_three():
    with pytest.raises(ShapeError, match=r"expected indices of shape \(batch,\) or \(batch, time\), got \(2, 3, 1\)"):
        Embedder(6, 3)(toDevice(np.zeros((2, 3, 1), np.int32)))


@pytest.mark.parametrize("paddingIndex", [4, -2], ids=["row", "from-the-end"])
def test_embedder_padding_index_matches_torch_zero_row_lookup_and_gradient(paddingIndex):
    torch = pytest.importorskip("torch")
    mod = Embedder(6, 5, paddingIndex=paddingIndex)
    table = toHost(mod.vars["W"].data)
    np.testing.assert_array_equal(table[4], 0)  # torch starts the padding row at zero
    assert np.all(np.delete(table, 4, axis=0) != 0)
    x = np.random.default_rng(1).integers(0, 6, (4, 9))
    x[:, -3:] = 4  # padded sequence ends
    checkAgainstTorch(mod, torch.nn.Embedding(6, 5, padding_idx=paddingIndex), x)
    np.testing.assert_array_equal(toHost(mod.vars["W"].grad)[4], 0)


def test_embedder_padding_row_gets_no_gradient_and_the_others_match_finite_differences():
    net = Sequential(Embedder(6, 3, paddingIndex=1), RNN(3, 4, mode="gru"), Linear(4, 2)).cast(np.float64)
    data = toDevice(indices)
    weights = toDevice(np.random.default_rng(0).standard_normal(net(data).shape))
    net.zeroGradParams()
    net(data)
    net.backward(weights.copy(), updGrad=False)
    net(data)
    net.backward(weights.copy(), updGrad=False)  # accumulated over two calls: still no gradient on row 1
    table = net[0].vars["W"]
    numeric = numericGrad(lambda: (net(data) * weights).sum(), table.data)
    grad = toHost(table.grad)
    np.testing.assert_array_equal(grad[1], 0)
    assert np.abs(numeric[1]).max() > 1e-3  # the row does move the output: it is held, not unused
    np.testing.assert_allclose(np.delete(grad, 1, axis=0), 2 * np.delete(numeric, 1, axis=0), rtol=1e-5, atol=1e-7)


def test_embedder_padding_index_survives_save_and_load_model(tmp_path):
    net = Sequential(Embedder(6, 3, paddingIndex=0), RNN(3, 4), Linear(4, 2))
    net.save(tmp_path / "net.h5")
    loaded = loadModel(tmp_path / "net.h5")
    assert loaded[0].paddingIndex == 0 and loaded.getBlueprint() == net.getBlueprint()
    np.testing.assert_array_equal(toHost(loaded(toDevice(indices))), toHost(net(toDevice(indices))))
    loaded.backward(toDevice(np.ones((2, 2), np.float32)))
    np.testing.assert_array_equal(toHost(loaded[0].vars["W"].grad)[0], 0)


@pytest.mark.parametrize("paddingIndex", [6, -7, 1.0, True, "0"])
def test_embedder_rejects_padding_index_outside_the_vocabulary(paddingIndex):
    with pytest.raises(ValueError, match=r"paddingIndex must be None or an int in \[-6, 6\) for a vocabulary of 6, "
                                         rf"got {re.escape(repr(paddingIndex))}"):
        Embedder(6, 3, paddingIndex=paddingIndex)
