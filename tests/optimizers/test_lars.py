"""LARS against a direct NumPy transcription of the paper's Algorithm 1 (torch has no LARS)."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential
from macrobatch.optimizers.lars import LARS


def paperLars(init, grads, lr, momRate, weightDecay, trustCoef):
    """Algorithm 1 of You, Gitman & Ginsburg (2017) in float64, one parameter array at a time."""
    final = {}
    for name, w in init.items():
        w, v = w.astype(np.float64), 0.0
        for step in grads:
            g = step[name].astype(np.float64)
            wNorm, gNorm = np.linalg.norm(w), np.linalg.norm(g)
            local = trustCoef * wNorm / (gNorm + weightDecay * wNorm) if wNorm > 0 and gNorm > 0 else 1.0
            v = momRate * v + lr * local * (g + weightDecay * w)
            w = w - v
        final[name] = w
    return final


@pytest.mark.parametrize("useGlobalState", [True, False])
@pytest.mark.parametrize("hyper", [(0.5, 0.9, 5e-4, 1e-3), (2.0, 0.0, 0.0, 0.02), (1.0, 0.8, 0.1, 0.5)])
def test_lars_follows_the_papers_algorithm_over_several_steps(run, hyper, useGlobalState):
    init, grads, final = run(LARS(*hyper), steps=6, useGlobalState=useGlobalState)
    expected = paperLars(init, grads, *hyper)
    for name in init:
        np.testing.assert_allclose(final[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
        assert not np.allclose(final[name], init[name], rtol=0, atol=1e-7), name


def test_lars_uses_a_trust_ratio_of_one_for_a_zero_weight_or_gradient():
    mod = Linear(3, 2)
    mod.vars["W"].data[...] = 0.0
    opt = LARS(learnRate=0.1, momRate=0.0, weightDecay=0.0).setupOn(mod)
    opt.zeroGradParams()
    mod.vars["W"].grad[...] = 1.0
    opt.update()
    np.testing.assert_allclose(toHost(mod.vars["W"].data), -0.1, rtol=1e-6)


def test_lars_trust_ratio_is_per_parameter_not_per_buffer(run):
    init, grads, final = run(LARS(1.0, 0.0, 0.0, 1e-3), steps=1)
    for name in init:
        # one step of plain LARS moves each array by exactly trustCoef * ||w||
        np.testing.assert_allclose(np.linalg.norm(final[name] - init[name]), 1e-3 * np.linalg.norm(init[name]),
                                   rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("useGlobalState", [True, False])
def test_lars_norms_of_parameters_longer_than_a_chunk_follow_the_paper(useGlobalState):
    """The GPU sums squares in chunks of 32768 elements: a 300 x 250 weight spans three of them."""
    mod = Sequential(Linear(300, 250), Linear(250, 3))
    rng = np.random.default_rng(5)
    init = {name: rng.standard_normal(var.shape).astype(np.float32) for name, var in mod.getVariables().items()}
    grads = [{name: rng.standard_normal(w.shape).astype(np.float32) for name, w in init.items()} for _ in range(3)]
    for name, var in mod.getVariables().items():
        var.data[...] = toDevice(init[name])
    opt = LARS(0.5, 0.9, 5e-4, 1e-3).setupOn(mod, useGlobalState)
    for step in grads:
        opt.zeroGradParams()
        for name, var in mod.getVariables().items():
            var.grad += toDevice(step[name])
        opt.update()
    expected = paperLars(init, grads, 0.5, 0.9, 5e-4, 1e-3)
    for name, var in mod.getVariables().items():
        np.testing.assert_allclose(toHost(var.data), expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_lars_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: LARS(0.5, 0.9, 5e-4, 1e-3))


def test_lars_with_a_multiplier_scales_that_layers_step(run):
    init, _, final = run(LARS(1.0, 0.0, 0.0, 1e-3).setLearnRateMultiplier("1", 0.25), steps=1)
    step = np.linalg.norm(final["1.W"] - init["1.W"])
    assert step == pytest.approx(0.25e-3 * np.linalg.norm(init["1.W"]), rel=1e-4)
    np.testing.assert_allclose(np.linalg.norm(final["0.W"] - init["0.W"]), 1e-3 * np.linalg.norm(init["0.W"]),
                               rtol=1e-4)


@pytest.mark.parametrize("kwargs, name", [({"learnRate": -0.1}, "learnRate"), ({"momRate": 1.0}, "momRate"),
                                          ({"weightDecay": -1e-4}, "weightDecay"), ({"trustCoef": 0.0}, "trustCoef")])
def test_lars_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"LARS: {name} must be"):
        LARS(**kwargs)
