"""WeightDecay: torch's L2 weight_decay, as a hook on any optimizer."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential
from macrobatch.optimizers.adam import Adam
from macrobatch.optimizers.momentumsgd import MomentumSGD
from macrobatch.optimizers.sgd import SGD
from macrobatch.optimizers.weightdecay import WeightDecay


@pytest.mark.parametrize("makeOptimizer", [lambda: SGD(0.1), lambda: MomentumSGD(0.05, 0.9),
                                           lambda: Adam(0.01)], ids=["SGD", "MomentumSGD", "Adam"])
def test_weight_decay_hook_matches_torch_weight_decay(torchParity, makeOptimizer):
    torchParity(makeOptimizer().addHook(WeightDecay(0.05)), steps=6)


@pytest.mark.parametrize("useGlobalState", [True, False])
def test_weight_decay_adds_rate_times_weights_across_chunk_boundaries(useGlobalState):
    mod = Sequential(Linear(200, 100), Linear(100, 3))  # 20k weights: more than one chunk
    opt = SGD(learnRate=0.0).addHook(WeightDecay(0.3)).setupOn(mod, useGlobalState)
    rng = np.random.default_rng(0)
    grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in mod.getVariables().items()}
    opt.zeroGradParams()
    for name, var in mod.getVariables().items():
        var.grad += toDevice(grads[name])
    opt.update()
    for name, var in mod.getVariables().items():
        np.testing.assert_allclose(toHost(var.grad), grads[name] + np.float32(0.3) * toHost(var.data), rtol=1e-6,
                                   err_msg=name)


def test_zero_rate_leaves_gradients_alone():
    mod = Linear(3, 2)
    opt = SGD(learnRate=0.0).addHook(WeightDecay(0.0)).setupOn(mod)
    mod.vars["W"].grad[...] = 1.5
    opt.update()
    assert (mod.vars["W"].grad == 1.5).all()


@pytest.mark.parametrize("rate", [-0.1, float("nan"), float("inf")])
def test_weight_decay_rejects_a_bad_rate(rate):
    with pytest.raises(ValueError, match="WeightDecay: rate must be >= 0"):
        WeightDecay(rate)
