"""RNN: LSTM, GRU and plain recurrences, one and two layers, one and two directions, last step or all steps.
Inputs go through toDevice and results through toHost, so on the CUDA backend the same tests check the
fused gate kernels."""
import itertools
import re

import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.module import loadModel
from macrobatch.modules.rnn import RNN

grid = list(itertools.product(("lstm", "gru", "relu", "tanh"), ("uni", "bi"), (1, 2), (False, True)))
ids = [f"{mode}-{direction}-{layers}layer-{'seq' if seq else 'last'}" for mode, direction, layers, seq in grid]


@pytest.fixture(scope="module")
def torch():
    """torch on one thread: on these tiny shapes its worker threads would spin longer than the work takes."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def randn(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("mode, direction, layers, getSequences", grid, ids=ids)
def test_rnn_input_and_parameter_gradients_through_time_match_finite_differences(mode, direction, layers,
                                                                                  getSequences):
    mod = RNN(2, 3, layers, mode, direction, getSequences).cast(np.float64)
    checkModuleGrads(mod, randn((2, 3, 2), 0, np.float64))


def torchReference(torch, mod, mode, direction, layers):
    """The torch module of the same kind, with mod's weights copied in by name."""
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(mode, torch.nn.RNN)
    kwargs = {} if mode in ("lstm", "gru") else {"nonlinearity": mode}
    ref = cls(mod.insize, mod.hsize, num_layers=layers, bidirectional=direction == "bi", batch_first=True, **kwargs)
    assert [name for name, _ in ref.named_parameters()] == list(mod.vars)
    with torch.no_grad():
        for name, param in ref.named_parameters():
            param.copy_(torch.from_numpy(toHost(mod.vars[name].data)))
    return ref


@pytest.mark.parametrize("mode, direction, layers, getSequences", grid, ids=ids)
def test_rnn_matches_torch_outputs_and_gradients(torch, mode, direction, layers, getSequences):
    mod = RNN(4, 5, layers, mode, direction, getSequences)
    ref = torchReference(torch, mod, mode, direction, layers)
    x = randn((3, 6, 4), 1)
    tx = torch.from_numpy(x).requires_grad_()
    seq, state = ref(tx)
    hn = state[0] if mode == "lstm" else state
    # torch's h_n is (layers * directions, batch, hsize): the top layer's entries, concatenated
    ty = seq if getSequences else torch.cat(list(hn[-mod.directions:]), dim=1)
    g = randn(tuple(ty.shape), 2)
    ty.backward(torch.from_numpy(g))
    y = toHost(mod(toDevice(x)))
    gx = toHost(mod.backward(toDevice(g)))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for name, param in ref.named_parameters():
        np.testing.assert_allclose(toHost(mod.vars[name].grad), param.grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


def test_rnn_last_step_of_bidirectional_pairs_forward_end_with_backward_start():
    mod = RNN(3, 4, direction="bi", getSequences=True)
    x = toDevice(randn((2, 5, 3), 3))
    seq = toHost(mod(x))
    mod.getSequences = False
    last = toHost(mod(x))
    np.testing.assert_array_equal(last, np.concatenate((seq[:, -1, :4], seq[:, 0, 4:]), axis=1))


def test_rnn_buffers_are_reused_across_calls_without_changing_results():
    mod = RNN(3, 4, layers=2, mode="gru", direction="bi", getSequences=True)
    a, b = toDevice(randn((2, 5, 3), 4)), toDevice(randn((3, 2, 3), 5))
    first = toHost(mod(a)).copy()
    mod(b)
    np.testing.assert_array_equal(toHost(mod(a)), first)


def test_rnn_first_layer_skips_input_gradient_but_accumulates_parameter_gradients():
    mod = RNN(3, 4, mode="lstm")
    mod(toDevice(randn((2, 5, 3), 6)))
    assert mod.backward(toDevice(randn((2, 4), 7)), updGrad=False) is None
    assert all(toHost(var.grad).any() for var in mod.vars.values())


def test_rnn_blueprint_and_weights_survive_save_and_load_model(tmp_path):
    mod = RNN(3, 4, layers=2, mode="gru", direction="bi", getSequences=True, name="encoder")
    path = tmp_path / "rnn.h5"
    mod.save(path)
    loaded = loadModel(path)
    assert isinstance(loaded, RNN) and loaded.getBlueprint() == mod.getBlueprint()
    x = toDevice(randn((2, 5, 3), 8))
    np.testing.assert_array_equal(toHost(loaded(x)), toHost(mod(x)))


@pytest.mark.parametrize("shape", [(2, 5), (2, 5, 4), (2, 5, 3, 1), (0, 5, 3), (2, 0, 3)])
def test_rnn_rejects_wrong_rank_insize_or_empty_axes_naming_expected_and_got(shape):
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, time, 3\).*got " + re.escape(str(shape))):
        RNN(3, 4)(toDevice(np.zeros(shape, np.float32)))


def test_rnn_rejects_integer_input():
    with pytest.raises(DtypeError, match="int64"):
        RNN(3, 4)(toDevice(np.zeros((2, 5, 3), np.int64)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="lstmx"), "unknown RNN mode"), (dict(direction="both"), "direction must be"),
    (dict(layers=0), "layers must be a positive integer")])
def test_rnn_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RNN(3, 4, **kwargs)
