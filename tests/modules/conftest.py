"""Helpers shared by the module tests, as fixtures (test files do not import each other)."""
import json

import numpy as np
import pytest

from macrobatch.engine.backend import isCuda, toDevice, toHost
from macrobatch.engine.dtype import isFloat, precisionDtype
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.engine.random import setSeed
from macrobatch.modules.module import loadModel
from macrobatch.modules.multimodule import flatArrays


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


def _halfInputs(inputs, rng, dtype):
    """Host inputs in the 16-bit dtype from a shape (3 * standard normal), a list of them, or an array
    (data built for a case, rounded to dtype; indices as they are)."""
    if isinstance(inputs, list):
        return [_halfInputs(item, rng, dtype) for item in inputs]
    if isinstance(inputs, np.ndarray):
        return inputs.astype(dtype) if isFloat(inputs.dtype) else inputs
    return (3 * rng.standard_normal(inputs)).astype(dtype)


def _toDeviceAs(data, dtype):
    """Host data (an array or a list) on the device, floats as dtype, indices as they are."""
    if isinstance(data, list):
        return [_toDeviceAs(item, dtype) for item in data]
    return toDevice(data, dtype if isFloat(data.dtype) else None)


def _shapes(data):
    return [_shapes(item) for item in data] if isinstance(data, list) else data.shape


def _runIn(mod, dtype, x, gradFor, train, seed):
    """mod forward on x and backward from gradFor(output shapes), both in dtype, from the same seed (so a
    dropout draws the same mask): host float64 copies of the outputs, the input gradient (a flat list,
    empty when the module returns None) and each parameter gradient and saved array by name."""
    mod.trainMode() if train else mod.evalMode()
    setSeed(seed)
    y = mod(_toDeviceAs(x, dtype))
    mod.zeroGradParams()
    gx = mod.backward(_toDeviceAs(gradFor(_shapes(y)), dtype))
    for ary in flatArrays(y) + flatArrays(gx) + [v.grad for v in mod.getVariables().values()]:
        assert ary.dtype == dtype, f"{mod.describe()} in {np.dtype(dtype).name} made a {ary.dtype} array"
    arrays = {f"output {i}": a for i, a in enumerate(flatArrays(y))}
    arrays.update({f"input gradient {i}": a for i, a in enumerate(flatArrays(gx))})
    arrays.update({f"gradient of {k}": v.grad for k, v in mod.getVariables().items()})
    arrays.update({f"{k} after the forward pass": owner.attrs[n] for k, (owner, n) in mod.getAttrs().items()})
    return {k: toHost(a).astype(np.float64) for k, a in arrays.items()}


# the relative error of one rounding to each 16-bit dtype: half the gap after 1 (11- and 8-bit significands)
_unitRoundoff = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}


def _halfParity(makeModule, inputs, dtype, roundings=8, train=True, seed=0):
    """The module makeModule() builds, cast to dtype (float16 or bfloat16), against the same module in
    float32 on the same dtype-exact inputs, parameters and output gradient: outputs, input gradients,
    parameter gradients and saved arrays (running statistics) agree within dtype's precision, and every
    array the module makes is of dtype. inputs: a shape, a list of shapes or an array (see _halfInputs);
    train: the mode both run in; seed: set before each forward pass (dropout masks).

    Tolerance: a rounding to dtype is off by at most u relative (2**-11 for float16, 2**-8 for bfloat16),
    and a value that went through r roundings, or a sum of n terms accumulated in dtype, by at most about
    (r + n) u of its magnitude; the float32 result, 2**13 (2**16) times more precise, stands for the exact
    one. So each array must satisfy max|a16 - a32| <= roundings * u * max|a32| (normwise, so that an element
    that cancels is judged against the array's scale). roundings: r + n for the case; the default 8 covers
    the longest elementwise chain NumPy rounds step by step (gelu's backward) and sums taken in float32
    (every long reduction: engine.dtype.statDtype); a case adds the length of a sum it accumulates in 16 bits
    (col2im's kernel taps, an RNN's steps)."""
    setSeed(seed)  # the same initial weights whatever ran before: a case passes or fails on its own
    mod32 = makeModule()
    state = {k: v.astype(dtype).astype(v.dtype) for k, v in mod32.getState().items()}
    mod32.setState(state)
    mod16 = makeModule().cast(dtype)
    mod16.setState(state)
    x = _halfInputs(inputs, np.random.default_rng(seed), dtype)

    def gradFor(shapes):
        return _halfInputs(shapes, np.random.default_rng(seed + 1), dtype)

    half = _runIn(mod16, dtype, x, gradFor, train, seed)
    single = _runIn(mod32, np.float32, x, gradFor, train, seed)
    assert half.keys() == single.keys()
    u, name = _unitRoundoff[np.dtype(dtype).name], np.dtype(dtype).name
    for key, ref in single.items():
        err, scale = np.abs(half[key] - ref).max(initial=0), np.abs(ref).max(initial=0)
        assert np.isfinite(half[key]).all(), f"{mod16.describe()} {key}: {name} made Inf or NaN"
        assert err <= roundings * u * scale, \
            f"{mod16.describe()} {key}: {name} is off by {err:.3g}, {err / (u * scale):.1f} u of its scale {scale:.3g}"


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
def halfParity():
    return _halfParity


@pytest.fixture(params=["float16", pytest.param("bfloat16", marks=pytest.mark.skipif(
    isCuda, reason="the CUDA backend refuses bfloat16 (engine.dtype.bfloat16Dtype says why)"))])
def halfDtype(request):
    """Each 16-bit dtype a module computes in: float16, and bfloat16 on NumPy (with ml_dtypes)."""
    if request.param == "bfloat16":
        pytest.importorskip("ml_dtypes", reason="bfloat16 is ml_dtypes' (pip install macrobatch[bfloat16])")
    return precisionDtype(request.param, "halfDtype")


@pytest.fixture
def gradsInBothModes():
    return _gradsInBothModes


@pytest.fixture
def roundTrip(tmp_path):
    return lambda mod, x: _roundTrip(mod, x, tmp_path / "model.h5")


@pytest.fixture
def threeParts(monkeypatch):
    """Split every batch a module splits over the cores (Module.splitBatch: pooling, activations, BatchNorm)
    into 3 parts (run on the worker threads), whatever its size and the cores."""
    from macrobatch.engine import parallel
    from macrobatch.modules import module
    monkeypatch.setattr(module, "splitRanges", lambda size, minimum: parallel.splitRanges(size, 3, 1))
