"""Gradient clipping hooks: torch's clip_grad_norm_ / clip_grad_value_ on the same gradients, in
both state modes, over all parameters at once, with the optimizer's lazy gradient zeroing."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential
from macrobatch.optimizers.adam import Adam
from macrobatch.optimizers.clipbyglobalnorm import ClipByGlobalNorm
from macrobatch.optimizers.clipbyvalue import ClipByValue
from macrobatch.optimizers.sgd import SGD


def gradients(model, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return {name: (scale * rng.standard_normal(var.shape)).astype(np.float32)
            for name, var in model.getVariables().items()}


def setGradients(optimizer, model, grads):
    """One training step's gradient, written the way backward does: after zeroGradParams."""
    optimizer.zeroGradParams()
    for name, var in model.getVariables().items():
        var.grad += toDevice(grads[name])


def hostGrads(model):
    return {name: toHost(var.grad).copy() for name, var in model.getVariables().items()}


def torchClip(torch, grads, clip):
    """The gradients after torch's clipping, and the norm clip_grad_norm_ returns (None for values)."""
    params = {name: torch.zeros(g.shape, requires_grad=True) for name, g in grads.items()}
    for name, p in params.items():
        p.grad = torch.from_numpy(grads[name].copy())
    if isinstance(clip, ClipByGlobalNorm):
        norm = float(torch.nn.utils.clip_grad_norm_(list(params.values()), clip.maxNorm))
    else:
        torch.nn.utils.clip_grad_value_(list(params.values()), clip.clipValue)
        norm = None
    return {name: p.grad.numpy() for name, p in params.items()}, norm


def model():
    return Sequential(Linear(4, 5), Linear(5, 3))


@pytest.mark.parametrize("useGlobalState", [True, False])
@pytest.mark.parametrize("maxNorm", [0.5, 1e3], ids=["clipped", "untouched"])
def test_clip_by_global_norm_gives_torch_clip_grad_norm_gradients_and_norm(useGlobalState, maxNorm):
    torch = pytest.importorskip("torch")
    mod = model()
    clip = ClipByGlobalNorm(maxNorm)
    opt = SGD(learnRate=0.0).addHook(clip).setupOn(mod, useGlobalState)
    grads = gradients(mod, seed=1)
    setGradients(opt, mod, grads)
    opt.update()
    theirs, norm = torchClip(torch, grads, clip)
    assert float(clip.norm) == pytest.approx(norm, rel=1e-6)
    for name, grad in hostGrads(mod).items():
        assert grad.dtype == np.float32
        np.testing.assert_allclose(grad, theirs[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_gradients_within_the_norm_are_left_bit_identical():
    mod = model()
    opt = SGD().addHook(ClipByGlobalNorm(1e3)).setupOn(mod)
    grads = gradients(mod, seed=2)
    setGradients(opt, mod, grads)
    opt.update()
    for name, grad in hostGrads(mod).items():
        np.testing.assert_array_equal(grad, grads[name])


def test_the_norm_is_global_so_every_parameter_is_scaled_by_the_same_factor():
    mod = model()
    grads = {name: np.full(var.shape, 0.3, np.float32) for name, var in mod.getVariables().items()}
    norms = [np.linalg.norm(g) for g in grads.values()]
    total = np.sqrt(sum(n * n for n in norms))
    maxNorm = 0.9 * total
    assert max(norms) < maxNorm  # no single parameter would be clipped on its own
    clip = ClipByGlobalNorm(maxNorm)
    opt = SGD(learnRate=0.0).addHook(clip).setupOn(mod)
    setGradients(opt, mod, grads)
    opt.update()
    assert float(clip.norm) == pytest.approx(total, rel=1e-6)
    for name, grad in hostGrads(mod).items():
        np.testing.assert_allclose(grad, grads[name] * maxNorm / (total + 1e-6), rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("useGlobalState", [True, False])
@pytest.mark.parametrize("cls", [SGD, Adam], ids=lambda c: c.__name__)
def test_training_steps_with_norm_clipping_match_torch(useGlobalState, cls):
    torch = pytest.importorskip("torch")
    mod = model()
    init = {name: toHost(var.data).copy() for name, var in mod.getVariables().items()}
    opt = cls(learnRate=0.05).addHook(ClipByGlobalNorm(5.0)).setupOn(mod, useGlobalState)
    params = {name: torch.from_numpy(w.copy()).requires_grad_() for name, w in init.items()}
    ref = (torch.optim.SGD if cls is SGD else torch.optim.Adam)(list(params.values()), lr=0.05)
    for step in range(4):
        grads = gradients(mod, seed=10 + step, scale=0.5 + step)  # global norms 2.7, 8.3, 14, 25
        setGradients(opt, mod, grads)
        opt.update()
        for name, p in params.items():
            p.grad = torch.from_numpy(grads[name].copy())
        torch.nn.utils.clip_grad_norm_(list(params.values()), 5.0)
        ref.step()
    for name, var in mod.getVariables().items():
        np.testing.assert_allclose(toHost(var.data), params[name].detach().numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.mark.parametrize("useGlobalState", [True, False])
def test_clip_by_value_gives_torch_clip_grad_value_gradients(useGlobalState):
    torch = pytest.importorskip("torch")
    mod = model()
    clip = ClipByValue(0.4)
    opt = SGD(learnRate=0.0).addHook(clip).setupOn(mod, useGlobalState)
    grads = gradients(mod, seed=3)
    setGradients(opt, mod, grads)
    opt.update()
    theirs, _ = torchClip(torch, grads, clip)
    ours = hostGrads(mod)
    assert all((np.abs(g) > 0.4).any() for g in grads.values())  # every parameter has something to clamp
    for name in grads:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_non_finite_gradient_is_clipped_as_torch_does(bad):
    torch = pytest.importorskip("torch")
    mod = model()
    clip = ClipByGlobalNorm(1.0)
    opt = SGD(learnRate=0.0).addHook(clip).setupOn(mod)
    grads = gradients(mod, seed=4)
    grads["0.W"][0, 0] = bad
    setGradients(opt, mod, grads)
    opt.update()
    theirs, norm = torchClip(torch, grads, clip)
    np.testing.assert_array_equal(float(clip.norm), norm)
    np.testing.assert_array_equal(norm, abs(bad))
    for name, grad in hostGrads(mod).items():
        np.testing.assert_array_equal(grad, theirs[name], err_msg=name)


def test_hooks_run_in_the_order_they_were_added():
    torch = pytest.importorskip("torch")
    results = []
    for hooks in ([ClipByValue(0.2), ClipByGlobalNorm(0.5)], [ClipByGlobalNorm(0.5), ClipByValue(0.2)]):
        mod = model()
        opt = SGD(learnRate=0.0).setupOn(mod)
        for hook in hooks:
            opt.addHook(hook)
        grads = gradients(mod, seed=5)
        setGradients(opt, mod, grads)
        opt.update()
        for hook in hooks:
            grads, _ = torchClip(torch, grads, hook)
        ours = hostGrads(mod)
        for name in grads:
            np.testing.assert_allclose(ours[name], grads[name], rtol=1e-6, atol=1e-7, err_msg=name)
        results.append(ours)
    assert any(not np.allclose(results[0][name], results[1][name]) for name in results[0])


def test_the_norm_ignores_gradients_left_stale_since_zero_grad_params():
    """A parameter that got no gradient this step still holds last step's values in the flat buffer
    until it is read; the hook must see zeros there."""
    mod = model()
    clip = ClipByGlobalNorm(1e6)
    opt = SGD(learnRate=0.0).addHook(clip).setupOn(mod)
    setGradients(opt, mod, gradients(mod, seed=6, scale=100.0))
    opt.update()
    opt.zeroGradParams()
    one = np.full((5, 3), 2.0, np.float32)
    mod.getVariables()["1.W"].grad += toDevice(one)
    opt.update()
    assert float(clip.norm) == pytest.approx(np.linalg.norm(one), rel=1e-6)
    buf, = opt.buffers
    assert float(np.abs(toHost(buf.grad)).sum()) == pytest.approx(one.sum(), rel=1e-6)


def test_clipping_float64_parameters_keeps_them_float64():
    mod = model().cast(np.float64)
    opt = SGD(learnRate=0.0).addHook(ClipByGlobalNorm(0.1)).addHook(ClipByValue(0.01)).setupOn(mod)
    opt.zeroGradParams()
    for var in mod.getVariables().values():
        var.grad += 1.0
    opt.update()
    assert all(var.grad.dtype == np.float64 and np.abs(toHost(var.grad)).max() <= 0.01
               for var in mod.getVariables().values())


@pytest.mark.parametrize("cls, name", [(ClipByGlobalNorm, "maxNorm"), (ClipByValue, "clipValue")])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bound_that_is_not_positive_and_finite_is_refused(cls, name, value):
    with pytest.raises(ValueError, match=f"{cls.__name__}: {name} must be > 0"):
        cls(value)
