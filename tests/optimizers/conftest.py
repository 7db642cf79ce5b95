"""Drivers shared by the optimizer tests: a small model with fixed weights, a fixed gradient
sequence set directly into Variable.grad, and the torch.optim twin of each optimizer."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential


def makeModel():
    """Linear(4, 5) -> Linear(5, 3), with the same weights (biases included, non-zero) on every call."""
    model = Sequential(Linear(4, 5), Linear(5, 3))
    rng = np.random.default_rng(7)
    for var in model.getVariables().values():
        var.data[...] = toDevice(rng.standard_normal(var.shape), var.dtype)
    return model


def snapshot(model):
    return {name: toHost(var.data).copy() for name, var in model.getVariables().items()}


def runSteps(optimizer, steps=5, useGlobalState=True, learnRates=None):
    """Set optimizer up on a fresh makeModel() and apply steps updates with a fixed sequence of
    random gradients (learnRates[i], when given, is set before step i). Returns the initial
    weights, the gradients and the final weights, as host dicts by parameter name."""
    model = makeModel()
    init = snapshot(model)
    rng = np.random.default_rng(11)
    grads = [{name: rng.standard_normal(w.shape).astype(w.dtype) for name, w in init.items()} for _ in range(steps)]
    optimizer.setupOn(model, useGlobalState)
    for i, step in enumerate(grads):
        if learnRates is not None:
            optimizer.learnRate = learnRates[i]
        optimizer.zeroGradParams()
        for name, var in model.getVariables().items():
            var.grad += toDevice(step[name])
        optimizer.update()
    return init, grads, snapshot(model)


def torchTwin(torch, optimizer, params):
    """The torch.optim optimizer with optimizer's update rule and hyperparameters, and weight_decay from a
    WeightDecay hook."""
    ref = torchRule(torch, optimizer, params)
    decay = sum(hook.rate for hook in optimizer.gradientHooks if type(hook).__name__ == "WeightDecay")
    if decay:
        ref.param_groups[0]["weight_decay"] = decay
    return ref


def torchRule(torch, optimizer, params):
    name, lr = type(optimizer).__name__, optimizer.learnRate
    if name == "SGD":
        return torch.optim.SGD(params, lr=lr)
    if name in ("MomentumSGD", "NesterovSGD"):
        return torch.optim.SGD(params, lr=lr, momentum=optimizer.momRate, nesterov=name == "NesterovSGD")
    if name == "Adam":
        return torch.optim.Adam(params, lr=lr, betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.epsilon,
                                amsgrad=optimizer.amsgrad)
    if name == "AdamW":
        return torch.optim.AdamW(params, lr=lr, betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.epsilon,
                                 weight_decay=optimizer.weightDecay, amsgrad=optimizer.amsgrad)
    if name == "RMSProp":
        return torch.optim.RMSprop(params, lr=lr, alpha=optimizer.decay, eps=optimizer.epsilon)
    if name == "AdaGrad":
        return torch.optim.Adagrad(params, lr=lr, eps=optimizer.epsilon)
    if name == "AdaDelta":
        return torch.optim.Adadelta(params, lr=lr, rho=optimizer.rho, eps=optimizer.epsilon)
    if name == "RMSPropGraves":
        return torch.optim.RMSprop(params, lr=lr, alpha=optimizer.decay, eps=optimizer.epsilon,
                                   momentum=optimizer.momRate, centered=True)
    raise KeyError(f"no torch twin for {name}")


def checkTorchParity(optimizer, steps=5, learnRates=None):
    """Run optimizer and its torch twin from the same weights through the same gradients and
    compare the weights (float32 tolerance) and the total change of every weight."""
    torch = pytest.importorskip("torch")
    init, grads, ours = runSteps(optimizer, steps, learnRates=learnRates)
    params = {name: torch.from_numpy(w.copy()).requires_grad_() for name, w in init.items()}
    ref = torchTwin(torch, optimizer, list(params.values()))
    for i, step in enumerate(grads):
        if learnRates is not None:
            for group in ref.param_groups:
                group["lr"] = learnRates[i]
        for name, p in params.items():
            p.grad = torch.from_numpy(step[name].copy())
        ref.step()
    for name, p in params.items():
        theirs = p.detach().numpy()
        np.testing.assert_allclose(ours[name], theirs, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(ours[name] - init[name], theirs - init[name], rtol=1e-3, atol=2e-7,
                                   err_msg=f"{name} (change over {steps} steps)")


def checkModesAgree(makeOptimizer, steps=5):
    """Global (flat-buffer) and per-variable state must give bit-identical weights."""
    _, _, flat = runSteps(makeOptimizer(), steps, useGlobalState=True)
    _, _, perVar = runSteps(makeOptimizer(), steps, useGlobalState=False)
    for name in flat:
        np.testing.assert_array_equal(flat[name], perVar[name], err_msg=name)


@pytest.fixture
def run():
    return runSteps


@pytest.fixture
def torchParity():
    return checkTorchParity


@pytest.fixture
def modesAgree():
    return checkModesAgree
