"""GradientAccumulation: k batches of n through the real Trainer step like one batch of k * n, a
partial group is flushed like a short last batch, and a run resumed inside a group is exact."""
import h5py
import numpy as np
import pytest

from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.costs.mse import MSE
from macrobatch.engine import serialize, setSeed
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ModelFileError
from macrobatch.handlers.trainer import Trainer
from macrobatch.modules.activation import Activation
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential
from macrobatch.optimizers.adam import Adam
from macrobatch.optimizers.clipbyglobalnorm import ClipByGlobalNorm
from macrobatch.optimizers.gradientaccumulation import GradientAccumulation
from macrobatch.optimizers.momentumsgd import MomentumSGD
from macrobatch.optimizers.sgd import SGD


def net():
    setSeed(3)
    return Sequential(Linear(6, 16), Activation("relu"), Linear(16, 3))


def problem(costName, samples):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((samples, 6)).astype(np.float32)
    y = rng.integers(0, 3, samples) if costName == "ce" else rng.standard_normal((samples, 3)).astype(np.float32)
    return x, y, CrossEntropy if costName == "ce" else MSE


def weights(mod):
    return {name: toHost(var.data).copy() for name, var in mod.getVariables().items()}


def assertSameWeights(a, b):
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)


def train(optimizer, batchsize, x, y, costCls, epochs=2, entry="train", flush=False):
    mod = net()
    optimizer.setupOn(mod)
    trainer = Trainer(mod, costCls(), optimizer, batchsize=batchsize)
    for _ in range(epochs):
        if entry == "train":
            trainer.train(toDevice(x), toDevice(trainer.prepareTarget(y)), random=False)
        else:
            trainer.trainFromHost(x, y, macroBatchSize=64, random=False)
        if flush:
            optimizer.flush()
    return weights(mod)


@pytest.mark.parametrize("entry", ["train", "trainFromHost"])
@pytest.mark.parametrize("costName", ["mse", "ce"])
@pytest.mark.parametrize("makeOptimizer", [lambda: SGD(learnRate=0.1), lambda: Adam(learnRate=0.01)],
                         ids=["SGD", "Adam"])
def test_four_batches_of_n_through_the_trainer_equal_one_batch_of_4n(entry, costName, makeOptimizer):
    x, y, costCls = problem(costName, samples=3 * 4 * 8)
    big = train(makeOptimizer(), 32, x, y, costCls, entry=entry)
    accumulated = train(GradientAccumulation(makeOptimizer(), 4), 8, x, y, costCls, entry=entry)
    assertSameWeights(accumulated, big)
    assert any(not np.allclose(big[name], weights(net())[name]) for name in big)  # training moved the weights


@pytest.mark.parametrize("useGlobalState", [True, False])
def test_flush_steps_a_partial_group_like_the_short_last_batch_of_an_epoch(useGlobalState):
    x, y, costCls = problem("ce", samples=3 * 32 + 16)  # each epoch ends with 2 of a group of 4 batches
    mod = net()
    ref = MomentumSGD(learnRate=0.1).setupOn(mod, useGlobalState)
    trainer = Trainer(mod, costCls(), ref, batchsize=32)
    for _ in range(2):
        trainer.train(toDevice(x), toDevice(trainer.prepareTarget(y)), random=False)
    accumulated = train(GradientAccumulation(MomentumSGD(learnRate=0.1), 4), 8, x, y, costCls, flush=True)
    assertSameWeights(accumulated, weights(mod))
    assert ref.steps == 8


def test_updates_step_only_every_kth_call_while_gradients_add_up():
    mod = net()
    opt = GradientAccumulation(SGD(learnRate=0.5), 3).setupOn(mod)
    W = mod.getVariables()["2.W"]
    before = toHost(W.data).copy()
    for call in range(1, 4):
        opt.zeroGradParams()
        W.grad += float(call)
        if call < 3:
            opt.update()
            np.testing.assert_array_equal(toHost(W.data), before)
            np.testing.assert_array_equal(toHost(W.grad), np.full(W.shape, call * (call + 1) / 2, np.float32))
            assert (opt.pending, opt.steps) == (call, 0)
    opt.update()
    np.testing.assert_allclose(toHost(W.data), before - 0.5 * (1 + 2 + 3) / 3, rtol=1e-6)
    assert (opt.pending, opt.steps) == (0, 1)
    opt.zeroGradParams()
    assert not toHost(W.grad).any()


def test_flush_without_pending_batches_changes_nothing():
    mod = net()
    opt = GradientAccumulation(SGD(learnRate=0.5), 2).setupOn(mod)
    before = weights(mod)
    assert opt.flush() is False and opt.steps == 0
    assertSameWeights(weights(mod), before)


def test_gradient_hooks_see_the_mean_gradient_of_the_group():
    mod = net()
    clip = ClipByGlobalNorm(1e6)
    opt = GradientAccumulation(SGD(learnRate=0.0), 4).addHook(clip).setupOn(mod)
    for call in range(4):
        opt.zeroGradParams()
        for var in mod.getVariables().values():
            var.grad += float(call)
        opt.update()
    total = sum(var.size for var in mod.getVariables().values())
    assert float(clip.norm) == pytest.approx(1.5 * np.sqrt(total), rel=1e-6)


def test_learn_rate_set_on_the_wrapper_reaches_the_optimizer():
    inner = Adam(learnRate=0.1)
    opt = GradientAccumulation(inner, 2)
    opt.learnRate = 0.02
    assert inner.learnRate == opt.learnRate == 0.02
    with pytest.raises(ValueError, match="Adam: learnRate must be >= 0"):
        opt.learnRate = -1.0


@pytest.mark.parametrize("useGlobalState, viaFile", [(True, False), (False, False), (True, True)])
def test_state_round_trip_resumes_inside_a_group_exactly(tmp_path, useGlobalState, viaFile):
    x, y, costCls = problem("mse", samples=8 * 10)
    reference = train(GradientAccumulation(Adam(learnRate=0.01), 4), 8, x, y, costCls, epochs=1)

    first = net()
    opt = GradientAccumulation(Adam(learnRate=0.01), 4).setupOn(first, useGlobalState)
    Trainer(first, costCls(), opt, batchsize=8).train(toDevice(x[:48]), toDevice(y[:48]), random=False)
    state, modelState = opt.getState(), first.getState()
    assert state["pending"] == 2 and set(state["grads"]) == set(first.getVariables())
    if viaFile:  # as a checkpoint stores it
        with h5py.File(tmp_path / "state.h5", "w") as f:
            serialize.writeState(f.create_group("opt", track_order=True), state)
        with h5py.File(tmp_path / "state.h5", "r") as f:
            state = serialize.readState(f["opt"])

    second = net()
    second.setState(modelState)
    resumed = GradientAccumulation(Adam(learnRate=0.5), 4).setupOn(second, useGlobalState)
    resumed.setState(state)
    assert (resumed.pending, resumed.steps, resumed.learnRate) == (2, 1, 0.01)
    Trainer(second, costCls(), resumed, batchsize=8).train(toDevice(x[48:]), toDevice(y[48:]), random=False)
    np.testing.assert_equal(weights(second), reference)


def test_state_between_groups_carries_no_gradients():
    mod = net()
    opt = GradientAccumulation(SGD(), 2).setupOn(mod)
    assert opt.getState()["pending"] == 0 and opt.getState()["grads"] == {}


def test_set_state_refuses_a_state_of_another_architecture_or_group_size():
    mod = net()
    opt = GradientAccumulation(SGD(), 4).setupOn(mod)
    opt.update()
    state = opt.getState()
    other = GradientAccumulation(SGD(), 4).setupOn(Sequential(Linear(6, 3)))
    with pytest.raises(ModelFileError, match="saved gradients do not fit"):
        other.setState(state)
    with pytest.raises(ModelFileError, match="1 pending batches do not fit groups of 1"):
        GradientAccumulation(SGD(), 1).setupOn(net()).setState(state)


@pytest.mark.parametrize("batches", [0, -2, 2.0, True])
def test_group_size_must_be_a_positive_integer(batches):
    with pytest.raises(ValueError, match="GradientAccumulation: batches must be a positive integer"):
        GradientAccumulation(SGD(), batches)


def test_update_before_setup_raises():
    with pytest.raises(RuntimeError, match="before setupOn"):
        GradientAccumulation(SGD(), 3).update()
