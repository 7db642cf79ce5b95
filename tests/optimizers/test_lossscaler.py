"""LossScaler: torch.amp.GradScaler's state machine and unscaling, step by step on the same gradients,
with its state on the device (no host wait per step) and an exact resume from getState."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ModelFileError, ShapeError
from macrobatch.optimizers import LossScaler

# True: a finite step; False: a step whose gradients hold an Inf or a NaN.
FINITE = [True, True, True, True, False, True, True, False, False, True, True, True, True, True, True, True]
SHAPES = [(7,), (3, 4)]
CONFIGS = {
    "defaults-interval-3": dict(initScale=2.0 ** 16, growthInterval=3),
    "uneven-factors": dict(initScale=1000.0, growthFactor=3.0, backoffFactor=0.3, growthInterval=2),
    "growth-would-overflow": dict(initScale=2.0 ** 127, growthInterval=1),
}


def stepGrads(step, finite, dtype=np.float32):
    """Host gradients of one step, as a scaled backward would give them; a non-finite step puts an Inf
    or a NaN (alternately) into one of the arrays."""
    rng = np.random.default_rng(100 + step)
    grads = [(rng.standard_normal(shape) * 300).astype(dtype) for shape in SHAPES]
    if not finite:
        grads[step % 2].flat[step % 5] = np.inf if step % 4 else np.nan
    return grads


def hostState(scaler):
    return float(toHost(scaler.scale)), int(toHost(scaler.growthTracker)), int(toHost(scaler.skippedSteps))


def torchScaler(torch, config):
    names = dict(initScale="init_scale", growthFactor="growth_factor", backoffFactor="backoff_factor",
                 growthInterval="growth_interval")
    return torch.amp.GradScaler("cpu", **{names[key]: value for key, value in config.items()})


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_state_machine_and_unscaled_gradients_match_torch_grad_scaler_step_by_step(config):
    torch = pytest.importorskip("torch")
    ours = LossScaler(**config)
    params = [torch.zeros(shape, requires_grad=True) for shape in SHAPES]
    optimizer = torch.optim.SGD(params, lr=0.0)
    taken = []
    optimizer.register_step_post_hook(lambda *_: taken.append(1))
    theirs = torchScaler(torch, config)
    theirs.scale(torch.ones(()))  # creates torch's scale and tracker
    for step, finite in enumerate(FINITE):
        host = stepGrads(step, finite)
        for p, g in zip(params, host):
            p.grad = torch.from_numpy(g.copy())
        grads = [toDevice(g) for g in host]
        allFinite = ours.unscaleAndCheck(grads)
        theirs.unscale_(optimizer)
        assert bool(toHost(allFinite)) is finite
        for grad, p in zip(grads, params):
            np.testing.assert_array_equal(toHost(grad), p.grad.numpy(), err_msg=f"step {step}")
        ours.update(allFinite)
        theirs.step(optimizer)
        theirs.update()
        assert hostState(ours) == (theirs.get_scale(), theirs.state_dict()["_growth_tracker"], step + 1 - len(taken)), \
            f"step {step}"
    assert ours.getState()["skippedSteps"] == FINITE.count(False)


@pytest.mark.parametrize("scale", [2.0 ** 16, 1000.0])
def test_float16_gradients_are_unscaled_as_torch_unscales_them(scale):
    torch = pytest.importorskip("torch")
    scaler = LossScaler(initScale=scale)
    for step, finite in enumerate([True, False]):
        host = stepGrads(step, finite, np.float16)
        theirs = [torch.from_numpy(g.copy()) for g in host]
        grads = [toDevice(g) for g in host]
        allFinite = scaler.unscaleAndCheck(grads)
        foundInf = torch.zeros(())
        # GradScaler.unscale_'s inverse: the reciprocal taken in double, then rounded to float
        inverse = torch.tensor(scale, dtype=torch.float32).double().reciprocal().float()
        torch._amp_foreach_non_finite_check_and_unscale_(theirs, foundInf, inverse)
        assert bool(toHost(allFinite)) is (float(foundInf) == 0.0) is finite
        for grad, their in zip(grads, theirs):
            assert grad.dtype == np.float16
            np.testing.assert_array_equal(toHost(grad), their.numpy())


def test_steps_never_wait_for_the_device(hostWaits):
    scaler = LossScaler(growthInterval=2)
    steps = [[toDevice(g) for g in stepGrads(step, finite)] for step, finite in enumerate(FINITE[:9])]
    before = hostWaits()
    for grads in steps:
        scaler.update(scaler.unscaleAndCheck(grads))
    assert hostWaits() == before
    assert scaler.getState()["skippedSteps"] == FINITE[:9].count(False)


def test_a_scaler_restored_mid_sequence_continues_identically():
    first = LossScaler(initScale=1000.0, growthFactor=3.0, backoffFactor=0.3, growthInterval=3)
    for step, finite in enumerate(FINITE[:6]):
        first.update(first.unscaleAndCheck([toDevice(g) for g in stepGrads(step, finite)]))
    state = first.getState()
    assert state["growthTracker"] == 1 and state["skippedSteps"] == 1
    resumed = LossScaler()
    resumed.setState(state)
    assert resumed.getState() == state
    for step, finite in enumerate(FINITE[6:], start=6):
        grads = [[toDevice(g) for g in stepGrads(step, finite)] for _ in range(2)]
        flags = [scaler.unscaleAndCheck(g) for scaler, g in zip((first, resumed), grads)]
        for a, b in zip(*grads):
            np.testing.assert_array_equal(toHost(a), toHost(b))
        for scaler, flag in zip((first, resumed), flags):
            scaler.update(flag)
        assert resumed.getState() == first.getState(), f"step {step}"


def test_a_disabled_scaler_changes_nothing_and_takes_every_step():
    scaler = LossScaler(enabled=False)
    host = stepGrads(4, finite=False)
    grads = [toDevice(g.copy()) for g in host]
    allFinite = scaler.unscaleAndCheck(grads)
    scaler.update(allFinite)
    assert bool(toHost(allFinite)) and float(toHost(scaler.lossScale())) == 1.0
    assert hostState(scaler) == (1.0, 0, 0)
    for grad, g in zip(grads, host):
        np.testing.assert_array_equal(toHost(grad), g)


@pytest.mark.parametrize("kwargs, match", [
    (dict(initScale=0.0), "positive finite float32, got 0.0"),
    (dict(initScale=-1.0), "positive finite float32"),
    (dict(initScale=float("inf")), "positive finite float32, got inf"),
    (dict(initScale=float("nan")), "positive finite float32, got nan"),
    (dict(initScale=1e39), "positive finite float32"),
    (dict(growthFactor=1.0), "growthFactor must be > 1"),
    (dict(backoffFactor=1.0), r"backoffFactor must be in \(0, 1\)"),
    (dict(backoffFactor=0.0), r"backoffFactor must be in \(0, 1\)"),
    (dict(growthInterval=0), "growthInterval must be a positive integer, got 0"),
    (dict(growthInterval=2.5), "growthInterval must be a positive integer, got 2.5"),
])
def test_bad_hyperparameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LossScaler(**kwargs)


def test_enabled_must_be_a_bool():
    with pytest.raises(TypeError, match="enabled must be True or False, got 'yes'"):
        LossScaler(enabled="yes")


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_gradients_of_another_dtype_are_refused_before_any_is_unscaled(dtype):
    scaler = LossScaler(initScale=4.0)
    good = toDevice(np.ones(3, np.float32))
    with pytest.raises(DtypeError, match=f"float16 or float32, got {np.dtype(dtype)}"):
        scaler.unscaleAndCheck([good, toDevice(np.ones(3, dtype))])
    np.testing.assert_array_equal(toHost(good), np.ones(3, np.float32))


@pytest.mark.cuda
def test_host_gradients_are_refused_on_the_gpu():
    with pytest.raises(TypeError, match="LossScaler.unscaleAndCheck: expected a device array"):
        LossScaler().unscaleAndCheck([np.ones(3, np.float32)])


@pytest.mark.parametrize("flag, error, match", [
    (np.ones((), np.float32), DtypeError, "expected unscaleAndCheck's bool, got float32"),
    (np.ones(1, bool), ShapeError, r"0-d bool, got shape \(1,\)"),
])
def test_update_refuses_anything_but_a_0d_bool_and_changes_nothing(flag, error, match):
    scaler = LossScaler()
    with pytest.raises(error, match=match):
        scaler.update(toDevice(flag))
    assert hostState(scaler) == (2.0 ** 16, 0, 0)


@pytest.mark.parametrize("change, match", [
    (dict(scale=0.0), "positive finite float32"),
    (dict(growthTracker=3), r"growthTracker 3 must be in \[0, 3\)"),
    (dict(skippedSteps=-1), "skippedSteps -1 >= 0"),
    (dict(growthFactor=0.5), "growthFactor must be > 1"),
    (dict(enabled=False), "the state of a disabled scaler cannot be loaded into an enabled one"),
    (dict(growthInterval=None), "does not fit a LossScaler"),
])
def test_set_state_refuses_a_state_that_does_not_fit_and_changes_nothing(change, match):
    saved = LossScaler(initScale=8.0, growthInterval=3).getState()
    scaler = LossScaler(growthInterval=5)
    with pytest.raises(ModelFileError, match=match):
        scaler.setState({**saved, **change})
    assert hostState(scaler) == (2.0 ** 16, 0, 0) and scaler.growthInterval == 5
