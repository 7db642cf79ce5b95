"""Helpers shared by the module tests, as fixtures (test files do not import each other)."""
import json

import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.module import loadModel


def _randomAffine(mod, seed=3):
    """Non-trivial scale and bias, so a wrong affine term cannot hide behind scale 1 and bias 0."""
    rng = np.random.default_rng(seed)
    scale, bias = mod.vars["scale"], mod.vars["bias"]
    scale.data[...] = toDevice(rng.uniform(0.5, 1.5, scale.shape), scale.dtype)
    bias.data[...] = toDevice(rng.standard_normal(bias.shape), bias.dtype)
    return mod


def _trainSteps(mod, shape, steps=3, dtype=np.float64):
    """A few train-mode forward passes on shifted, scaled data, to move the running statistics."""
    rng = np.random.default_rng(7)
    for _ in range(steps):
        mod(toDevice(rng.normal(2.0, 3.0, shape), dtype))


def _distinct(shape, seed, dtype):
    """Values with no ties, spread far beyond the finite-difference step."""
    size = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(size).reshape(shape) / size - 0.5).astype(dtype)


def _torchParity(mod, x, reference, params=None, rtol=1e-5, atol=1e-6):
    """mod and reference (a function of a torch tensor) on the same float32 input x, backward from the
    same random output gradient: outputs, input gradients and, for params {name: torch parameter},
    parameter gradients agree. The module's gradients are zeroed first; returns the module's output."""
    torch = pytest.importorskip("torch")
    mod.zeroGradParams()
    y = toHost(mod(toDevice(x)))
    tx = torch.from_numpy(x).requires_grad_()
    ty = reference(tx)
    g = np.random.default_rng(2).standard_normal(ty.shape).astype(x.dtype)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(toHost(mod.backward(toDevice(g))), tx.grad.numpy(), rtol=rtol, atol=atol)
    for name, param in (params or {}).items():
        np.testing.assert_allclose(toHost(mod.vars[name].grad), param.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of {name}")
        param.grad = None
    return y


def _affineParity(mod, ref, x, rtol=1e-5, atol=1e-5):
    """A normalisation module and its torch counterpart ref from the same (random) scale and bias, on
    the same input x: as _torchParity, parameter gradients included when the module has them."""
    torch = pytest.importorskip("torch")
    params = {}
    if mod.vars:
        _randomAffine(mod)
        params = {"scale": ref.weight, "bias": ref.bias}
        with torch.no_grad():
            for name, param in params.items():
                param.copy_(torch.from_numpy(toHost(mod.vars[name].data)))
    return _torchParity(mod, x, ref, params, rtol=rtol, atol=atol)


def _batchNormParity(mod, ref, shape, rtol=1e-4, atol=1e-5):
    """mod and the torch batch norm ref through three train steps and one eval step on the same data (and
    the same random scale and bias each step): outputs, input and parameter gradients, and the running
    statistics after each step agree."""
    rng = np.random.default_rng(1)
    for train in (True, True, True, False):
        mod.train = train
        ref.train(train)
        x = rng.normal(1.0, 2.0, shape).astype(np.float32)
        _affineParity(mod, ref, x, rtol, atol)
        np.testing.assert_allclose(toHost(mod.attrs["mean"]), ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(toHost(mod.attrs["var"]), ref.running_var.numpy(), rtol=1e-5, atol=1e-6)


def _gradsInBothModes(mod, x):
    """Finite-difference checks of input and parameter gradients in train mode, then in eval mode."""
    checkModuleGrads(mod.trainMode(), x)
    checkModuleGrads(mod.evalMode(), x)


def _roundTrip(mod, x, path):
    """Save mod, rebuild it from the file alone: same class, blueprint and eval-mode output on x."""
    mod.save(path)
    loaded = loadModel(path)
    assert type(loaded) is type(mod) and loaded.getBlueprint() == json.loads(json.dumps(mod.getBlueprint()))
    np.testing.assert_array_equal(toHost(loaded.evalMode()(toDevice(x))), toHost(mod.evalMode()(toDevice(x))))
    return loaded


@pytest.fixture
def randomAffine():
    return _randomAffine


@pytest.fixture
def trainSteps():
    return _trainSteps


@pytest.fixture
def distinct():
    return _distinct


@pytest.fixture
def torchParity():
    return _torchParity


@pytest.fixture
def affineParity():
    return _affineParity


@pytest.fixture
def batchNormParity():
    return _batchNormParity


@pytest.fixture
def gradsInBothModes():
    return _gradsInBothModes


@pytest.fixture
def roundTrip(tmp_path):
    return lambda mod, x: _roundTrip(mod, x, tmp_path / "model.h5")


@pytest.fixture
def threeParts(monkeypatch):
    """Split every pooled batch into 3 parts (run on the worker threads), whatever its size and the cores."""
    from macrobatch.engine import parallel
    from macrobatch.modules import poolnd
    monkeypatch.setattr(poolnd, "splitRanges", lambda size, minimum: parallel.splitRanges(size, 3, 1))
