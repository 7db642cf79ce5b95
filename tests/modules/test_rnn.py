"""RNN: LSTM, GRU and plain recurrences, one and two layers, one and two directions, last step or all steps.
Inputs go through toDevice and results through toHost, so on the CUDA backend the same tests check the
fused gate kernels."""
import itertools
import re

import numpy as np
import pytest

from macrobatch.engine import setSeed
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads, numericGrad
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


def torchReference(torch, mod, mode, direction, layers, dropout=0.0):
    """The torch module of the same kind, with mod's weights copied in by name."""
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(mode, torch.nn.RNN)
    kwargs = {} if mode in ("lstm", "gru") else {"nonlinearity": mode}
    ref = cls(mod.insize, mod.hsize, num_layers=layers, bidirectional=direction == "bi", batch_first=True,
              dropout=dropout, **kwargs)
    assert [name for name, _ in ref.named_parameters()] == list(mod.vars)
    with torch.no_grad():
        for name, param in ref.named_parameters():
            param.copy_(torch.from_numpy(toHost(mod.vars[name].data)))
    return ref


def checkAgainstTorch(torch, mod, ref):
    """mod and its torch twin ref on the same input and output gradient: outputs, input gradients and
    parameter gradients agree."""
    x = randn((3, 6, 4), 1)
    tx = torch.from_numpy(x).requires_grad_()
    seq, state = ref(tx)
    hn = state[0] if mod.mode == "lstm" else state
    # torch's h_n is (layers * directions, batch, hsize): the top layer's entries, concatenated
    ty = seq if mod.getSequences else torch.cat(list(hn[-mod.directions:]), dim=1)
    g = randn(tuple(ty.shape), 2)
    ty.backward(torch.from_numpy(g))
    y = toHost(mod(toDevice(x)))
    gx = toHost(mod.backward(toDevice(g)))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for name, param in ref.named_parameters():
        np.testing.assert_allclose(toHost(mod.vars[name].grad), param.grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


@pytest.mark.parametrize("mode, direction, layers, getSequences", grid, ids=ids)
def test_rnn_matches_torch_outputs_and_gradients(torch, mode, direction, layers, getSequences):
    mod = RNN(4, 5, layers, mode, direction, getSequences)
    checkAgainstTorch(torch, mod, torchReference(torch, mod, mode, direction, layers))


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


dropoutGrid = [("lstm", "bi", 3), ("gru", "uni", 2), ("tanh", "bi", 2)]
dropoutIds = [f"{mode}-{direction}-{layers}layer" for mode, direction, layers in dropoutGrid]


@pytest.mark.parametrize("getSequences", [False, True], ids=["last", "seq"])
@pytest.mark.parametrize("mode, direction, layers", dropoutGrid, ids=dropoutIds)
def test_rnn_dropout_in_eval_mode_matches_torch_in_eval_mode(torch, mode, direction, layers, getSequences):
    mod = RNN(4, 5, layers, mode, direction, getSequences, dropout=0.4).evalMode()
    checkAgainstTorch(torch, mod, torchReference(torch, mod, mode, direction, layers, dropout=0.4).eval())


@pytest.mark.parametrize("mode, direction, layers", dropoutGrid, ids=dropoutIds)
def test_rnn_dropout_in_train_mode_matches_torch_layers_with_the_same_masks(torch, mode, direction, layers):
    # torch draws its masks from its own generator: the reference is torch's single layers stacked by hand,
    # with the masks this module drew applied between them, outputs and all gradients compared
    p = 0.3
    mod = RNN(4, 5, layers, mode, direction, getSequences=True, dropout=p)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(mode, torch.nn.RNN)
    kwargs = {} if mode in ("lstm", "gru") else {"nonlinearity": mode}
    refs = [cls(4 if k == 0 else 5 * mod.directions, 5, bidirectional=direction == "bi", batch_first=True, **kwargs)
            for k in range(layers)]
    with torch.no_grad():
        for k, ref in enumerate(refs):
            for name, param in ref.named_parameters():
                param.copy_(torch.from_numpy(toHost(mod.vars[name.replace("_l0", f"_l{k}")].data)))
    x = randn((3, 6, 4), 1)
    y = toHost(mod(toDevice(x)))
    masks = [toHost(drop.keep).transpose(1, 0, 2) for drop in mod.dropouts]  # (batch, time, features)
    assert all(0 < m.mean() < 1 for m in masks)
    tx = torch.from_numpy(x).requires_grad_()
    h = tx
    for k, ref in enumerate(refs):
        h = ref(h)[0]
        if k < layers - 1:
            h = h * torch.from_numpy(masks[k]) / (1 - p)
    g = randn(tuple(h.shape), 2)
    h.backward(torch.from_numpy(g))
    gx = toHost(mod.backward(toDevice(g)))
    np.testing.assert_allclose(y, h.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for k, ref in enumerate(refs):
        for name, param in ref.named_parameters():
            np.testing.assert_allclose(toHost(mod.vars[name.replace("_l0", f"_l{k}")].grad), param.grad.numpy(),
                                       rtol=1e-4, atol=1e-5, err_msg=f"layer {k} {name}")


def test_rnn_dropout_masks_drop_about_p_of_every_layer_but_the_last_and_scale_the_rest():
    setSeed(3)
    mod = RNN(3, 50, layers=3, mode="gru", direction="bi", getSequences=True, dropout=0.3)
    x = toDevice(randn((40, 20, 3), 4))
    y = toHost(mod(x))
    for k, drop in enumerate(mod.dropouts):
        keep = toHost(drop.keep)
        assert keep.shape == (20, 40, 100) and abs(keep.mean() - 0.7) < 0.01
        out, nextInput = toHost(mod.layerOutputs[k]), toHost(mod.layerInputs[k + 1])
        np.testing.assert_allclose(nextInput, out * keep / 0.7, rtol=1e-6, atol=1e-7)
    masks = [toHost(drop.keep) for drop in mod.dropouts]
    assert not np.array_equal(masks[0], masks[1])  # a fresh mask per layer
    np.testing.assert_array_equal(y, toHost(mod.layerOutputs[-1]).transpose(1, 0, 2))  # the last layer: no drop
    assert not (y == 0).any()
    mod(x)
    assert not np.array_equal(toHost(mod.dropouts[0].keep), masks[0])  # and per call


def test_rnn_dropout_train_mode_gradients_match_finite_differences_for_a_fixed_seed():
    mod = RNN(2, 3, layers=3, mode="lstm", direction="bi", getSequences=True, dropout=0.4).cast(np.float64)
    x = toDevice(randn((2, 3, 2), 0, np.float64))
    weights = toDevice(randn((2, 3, 6), 1, np.float64))

    def loss():
        setSeed(9)  # the same masks on every call
        return (mod(x) * weights).sum()

    loss()
    assert any(not toHost(drop.keep).all() for drop in mod.dropouts)
    mod.zeroGradParams()
    gx = toHost(mod.backward(weights.copy()))
    np.testing.assert_allclose(gx, numericGrad(loss, x), rtol=1e-5, atol=1e-7)
    for name in ("weight_ih_l0", "weight_hh_l1_reverse", "bias_ih_l2"):
        np.testing.assert_allclose(toHost(mod.vars[name].grad), numericGrad(loss, mod.vars[name].data),
                                   rtol=1e-5, atol=1e-7, err_msg=name)


def test_rnn_dropout_is_reproduced_by_set_seed_and_absent_in_eval_mode_and_on_one_layer():
    mod = RNN(3, 4, layers=2, mode="lstm", getSequences=True, dropout=0.5)
    x = toDevice(randn((4, 5, 3), 2))
    setSeed(1)
    first = toHost(mod(x)).copy()
    setSeed(1)
    np.testing.assert_array_equal(toHost(mod(x)), first)
    dropped = toHost(mod(x)).copy()
    assert not np.array_equal(dropped, first)
    evaluated = toHost(mod.evalMode()(x))
    assert not np.array_equal(evaluated, first) and mod.dropouts[0].keep is None
    one = RNN(3, 4, dropout=0.5)  # nothing follows its only layer: train mode drops nothing
    np.testing.assert_array_equal(toHost(one(x)), toHost(one.evalMode()(x)))


def test_rnn_dropout_survives_save_and_load_model(tmp_path):
    mod = RNN(3, 4, layers=2, mode="gru", direction="bi", getSequences=True, dropout=0.25, name="encoder")
    mod.save(tmp_path / "rnn.h5")
    loaded = loadModel(tmp_path / "rnn.h5")
    assert loaded.dropout == 0.25 and loaded.getBlueprint() == mod.getBlueprint()
    x = toDevice(randn((2, 5, 3), 8))
    np.testing.assert_array_equal(toHost(loaded.evalMode()(x)), toHost(mod.evalMode()(x)))


@pytest.mark.parametrize("dropout", [1.0, -0.1, "0.5", True])
def test_rnn_rejects_dropout_outside_zero_to_one(dropout):
    with pytest.raises(ValueError, match=rf"RNN: dropout must be a probability in \[0, 1\), "
                                         rf"got {re.escape(repr(dropout))}"):
        RNN(3, 4, layers=2, dropout=dropout)
