import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import ModelFileError
from macrobatch.modules.linear import Linear
from macrobatch.optimizers.adam import Adam


def test_adam_matches_torch_with_default_hyperparameters(torchParity):
    torchParity(Adam())


def test_adam_matches_torch(torchParity):
    torchParity(Adam(learnRate=0.05, beta1=0.8, beta2=0.99, epsilon=1e-3), steps=8)


def test_adam_defaults_are_torchs():
    torch = pytest.importorskip("torch")
    ref = torch.optim.Adam([torch.zeros(1, requires_grad=True)]).defaults
    opt = Adam()
    assert (opt.learnRate, (opt.beta1, opt.beta2), opt.epsilon) == (ref["lr"], ref["betas"], ref["eps"])


def test_adam_follows_its_formula_step_by_step(run):
    lr, b1, b2, eps = 0.05, 0.8, 0.99, 1e-3
    init, grads, final = run(Adam(lr, b1, b2, eps), steps=4)
    for name, p in init.items():
        p, m, v = p.astype(np.float64), 0.0, 0.0
        for t, step in enumerate(grads, 1):
            g = step[name].astype(np.float64)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(final[name], p, rtol=1e-5, atol=1e-6, err_msg=name)


def test_adam_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: Adam(0.05, 0.8, 0.99, 1e-3))


@pytest.mark.parametrize("kwargs, name", [({"learnRate": -1e-3}, "learnRate"), ({"beta1": 1.0}, "beta1"),
                                          ({"beta1": -0.1}, "beta1"), ({"beta2": 1.0}, "beta2"),
                                          ({"beta2": 2.0}, "beta2"), ({"epsilon": 0.0}, "epsilon"),
                                          ({"epsilon": -1e-8}, "epsilon")])
def test_adam_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"Adam: {name} must be"):
        Adam(**kwargs)


def test_adam_amsgrad_matches_torch(torchParity):
    torchParity(Adam(learnRate=0.05, beta1=0.8, beta2=0.9, epsilon=1e-3, amsgrad=True), steps=8)


def test_adam_amsgrad_follows_its_formula_and_differs_from_adam(run):
    # beta2 = 0.5 forgets fast, so v shrinks wherever a gradient does and vMax departs from v
    lr, b1, b2, eps = 0.05, 0.8, 0.5, 1e-3
    init, grads, final = run(Adam(lr, b1, b2, eps, amsgrad=True), steps=6)
    _, _, plain = run(Adam(lr, b1, b2, eps), steps=6)
    for name, p in init.items():
        p, m, v, vMax = p.astype(np.float64), 0.0, 0.0, 0.0
        for t, step in enumerate(grads, 1):
            g = step[name].astype(np.float64)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            vMax = np.maximum(vMax, v)
            p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(vMax / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(final[name], p, rtol=1e-5, atol=1e-6, err_msg=name)
        assert np.abs(final[name] - plain[name]).max() > 1e-3, name


def test_adam_amsgrad_global_and_per_variable_state_give_identical_weights(modesAgree):
    modesAgree(lambda: Adam(0.05, 0.8, 0.5, 1e-3, amsgrad=True))


@pytest.mark.parametrize("useGlobalState", [True, False], ids=["global", "per-variable"])
def test_adam_amsgrad_state_round_trip_resumes_exactly(useGlobalState):
    # vMax, the maximum of the second moments, is part of the state: an optimizer resumed from getState
    # after 3 steps (on a copy of the weights) ends bit-identical to an uninterrupted one
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) * scale for scale in (3, 2, 1, 0.5, 0.2, 0.1)]

    def steps(opt, model, part):
        for g in part:
            opt.zeroGradParams()
            model.vars["W"].grad += toDevice(g)
            opt.update()

    straight, first, resumed = (Linear(4, 3) for _ in range(3))
    for model in (first, resumed):
        model.vars["W"].data[...] = straight.vars["W"].data
        model.vars["b"].data[...] = straight.vars["b"].data
    opt = Adam(0.05, 0.8, 0.5, 1e-3, amsgrad=True).setupOn(straight, useGlobalState)
    steps(opt, straight, grads)
    opt = Adam(0.05, 0.8, 0.5, 1e-3, amsgrad=True).setupOn(first, useGlobalState)
    steps(opt, first, grads[:3])
    state = opt.getState()
    assert all(len(arrays) == 3 for arrays in state["slots"].values())
    for name in ("W", "b"):
        resumed.vars[name].data[...] = first.vars[name].data
    opt = Adam(0.05, 0.8, 0.5, 1e-3, amsgrad=True).setupOn(resumed, useGlobalState)
    opt.setState(state)
    steps(opt, resumed, grads[3:])
    for name in ("W", "b"):
        np.testing.assert_array_equal(toHost(resumed.vars[name].data), toHost(straight.vars[name].data), err_msg=name)


def test_adam_refuses_the_state_of_adam_without_amsgrad():
    model = Linear(4, 3)
    state = Adam().setupOn(model).getState()
    with pytest.raises(ModelFileError, match="the saved state does not fit this optimizer"):
        Adam(amsgrad=True).setupOn(model).setState(state)
