"""LARS against a direct NumPy transcription of the paper's Algorithm 1 (torch has no LARS)."""
import numpy as np
import pytest

from macrobatch.modules.linear import Linear
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
    np.testing.assert_allclose(mod.vars["W"].data, -0.1, rtol=1e-6)


def test_lars_trust_ratio_is_per_parameter_not_per_buffer(run):
    init, grads, final = run(LARS(1.0, 0.0, 0.0, 1e-3), steps=1)
    for name in init:
        # one step of plain LARS moves each array by exactly trustCoef * ||w||
        np.testing.assert_allclose(np.linalg.norm(final[name] - init[name]), 1e-3 * np.linalg.norm(init[name]),
                                   rtol=1e-4, err_msg=name)


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
