"""Per-parameter learning-rate multipliers: torch param groups with lr scaled, exact freezing,
prefix and Variable targets, and checkpoints."""
import numpy as np
import pytest

from macrobatch.engine import backend
from macrobatch.engine.backend import toHost
from macrobatch.engine.errors import ModelFileError
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential
from macrobatch.optimizers.adadelta import AdaDelta
from macrobatch.optimizers.adam import Adam
from macrobatch.optimizers.adamw import AdamW
from macrobatch.optimizers.momentumsgd import MomentumSGD
from macrobatch.optimizers.sgd import SGD

def makeModel():
    return Sequential(Linear(4, 5), Linear(5, 3))


def snapshot(model):
    return {name: toHost(var.data).copy() for name, var in model.getVariables().items()}


scales = {"0.W": 0.0, "0.b": 0.0, "1.W": 0.5, "1.b": 3.0}


def freezeAndScale(optimizer):
    return optimizer.setLearnRateMultiplier("0", 0.0).setLearnRateMultiplier("1.W", 0.5) \
        .setLearnRateMultiplier("1.b", 3.0)


def torchGroups(torch, optimizer, init, grads):
    """The weights after torch.optim steps with one param group per parameter, lr scaled."""
    params = {name: torch.from_numpy(w.copy()).requires_grad_() for name, w in init.items()}
    lr = optimizer.learnRate
    if isinstance(optimizer, MomentumSGD):
        ref = torch.optim.SGD([{"params": [p], "lr": lr * scales[n]} for n, p in params.items()], lr=lr,
                              momentum=optimizer.momRate)
    elif isinstance(optimizer, AdaDelta):
        ref = torch.optim.Adadelta([{"params": [p], "lr": lr * scales[n]} for n, p in params.items()], lr=lr)
    else:
        cls = {SGD: torch.optim.SGD, Adam: torch.optim.Adam, AdamW: torch.optim.AdamW}[type(optimizer)]
        ref = cls([{"params": [p], "lr": lr * scales[n]} for n, p in params.items()], lr=lr)
    for step in grads:
        for name, p in params.items():
            p.grad = torch.from_numpy(step[name].copy())
        ref.step()
    return {name: p.detach().numpy() for name, p in params.items()}


@pytest.mark.parametrize("useGlobalState", [True, False])
@pytest.mark.parametrize("makeOptimizer", [lambda: SGD(0.1), lambda: MomentumSGD(0.05), lambda: Adam(0.01),
                                           lambda: AdamW(0.01), lambda: AdaDelta()],
                         ids=["SGD", "MomentumSGD", "Adam", "AdamW", "AdaDelta"])
def test_multipliers_match_torch_param_groups_with_scaled_learn_rates(run, makeOptimizer, useGlobalState):
    torch = pytest.importorskip("torch")
    optimizer = freezeAndScale(makeOptimizer())
    init, grads, ours = run(optimizer, steps=5, useGlobalState=useGlobalState)
    theirs = torchGroups(torch, optimizer, init, grads)
    for name in init:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6, err_msg=name)
        assert (ours[name] == init[name]).all() == (scales[name] == 0.0), name


@pytest.mark.parametrize("useGlobalState", [True, False])
def test_frozen_parameters_stay_bit_identical_and_their_state_untouched(run, useGlobalState):
    optimizer = Adam(0.1).setLearnRateMultiplier("0", 0.0)
    init, _, final = run(optimizer, steps=5, useGlobalState=useGlobalState)
    for name in init:
        assert (final[name] == init[name]).all() == name.startswith("0."), name
    for (_, _, state, _), segments in zip(optimizer.slots, optimizer.segments):
        for name, start, stop in segments:
            untouched = all(not toHost(m).reshape(-1)[start:stop].any() for m in state)
            assert untouched == name.startswith("0."), name


def test_update_runs_once_per_run_of_equal_multipliers_and_skips_frozen_ones(monkeypatch):
    mod = Sequential(Linear(4, 5), Linear(5, 5), Linear(5, 3))
    opt = SGD(0.1).setLearnRateMultiplier("0", 0.0).setLearnRateMultiplier("2", 0.1).setupOn(mod)
    seen = []
    # the scalars come last in updateCpu(param, grad, state, scratch, scalars) and in updateGpu
    monkeypatch.setattr(opt, "updateGpu" if backend.isCuda else "updateCpu", lambda *args: seen.append(args[-1]))
    opt.update()
    assert seen == [(0.1,), (pytest.approx(0.01),)]


def test_a_multiplier_set_after_setup_applies_from_the_next_step_and_can_unfreeze():
    mod = Linear(3, 2)
    opt = SGD(learnRate=1.0).setupOn(mod)
    W = mod.vars["W"]
    before = toHost(W.data).copy()
    opt.setLearnRateMultiplier(W, 0.0)
    W.grad[...] = 1.0
    opt.update()
    np.testing.assert_array_equal(toHost(W.data), before)
    opt.setLearnRateMultiplier(W, 0.25)
    opt.update()
    np.testing.assert_allclose(toHost(W.data), before - 0.25, rtol=1e-6)


def test_later_rules_win_where_targets_overlap(run):
    init, _, final = run(SGD(0.1).setLearnRateMultiplier("", 0.0).setLearnRateMultiplier("1.b", 1.0), steps=2)
    assert [name for name in init if (final[name] != init[name]).any()] == ["1.b"]


def test_multipliers_survive_get_state_and_set_state(run):
    optimizer = freezeAndScale(Adam(0.01))
    run(optimizer, steps=3)
    state = optimizer.getState()
    assert state["multipliers"] == scales
    model = makeModel()
    fresh = Adam(0.01).setupOn(model)
    fresh.setState(state)
    assert fresh.multipliers == scales and fresh.getState()["multipliers"] == scales
    before = snapshot(model)
    for var in model.getVariables().values():
        var.grad[...] = 1.0
    fresh.update()
    after = snapshot(model)
    assert [name for name in before if (after[name] != before[name]).any()] == ["1.W", "1.b"]


def test_set_state_rejects_multipliers_for_parameters_the_model_lacks():
    opt = SGD().setupOn(makeModel())
    state = opt.getState() | {"multipliers": {"7.W": 0.0}}
    with pytest.raises(ModelFileError, match=r"multipliers for parameters this model lacks: \['7.W'\]"):
        opt.setState(state)
    assert opt.multipliers == {}


def test_a_target_that_matches_no_parameter_raises_naming_it(run):
    with pytest.raises(KeyError, match=r"'2.W' matches no parameter \(parameters: 0.W, 0.b, 1.W, 1.b\)"):
        run(SGD().setLearnRateMultiplier("2.W", 0.0), steps=0)
    opt = SGD().setupOn(makeModel())
    with pytest.raises(KeyError, match="'0.W.x' matches no parameter"):
        opt.setLearnRateMultiplier("0.W.x", 0.0)
    assert opt.multipliers == {} and opt.multiplierRules == {}


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_bad_multiplier_raises(value):
    with pytest.raises(ValueError, match="SGD: learnRate multiplier must be >= 0"):
        SGD().setLearnRateMultiplier("0", value)
