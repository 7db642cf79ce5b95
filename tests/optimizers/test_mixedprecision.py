"""Mixed precision in the optimizer: float32 masters in the flat buffers, a 16-bit working copy the
Variables are bound to, the unscale, the gated (skipped) step, the refresh, and exact state round trips."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ModelFileError
from macrobatch.modules.batchnorm1d import BatchNorm1D
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential
from macrobatch.optimizers.adadelta import AdaDelta
from macrobatch.optimizers.adagrad import AdaGrad
from macrobatch.optimizers.adam import Adam
from macrobatch.optimizers.adamw import AdamW
from macrobatch.optimizers.clipbyglobalnorm import ClipByGlobalNorm
from macrobatch.optimizers.gradientaccumulation import GradientAccumulation
from macrobatch.optimizers.lars import LARS
from macrobatch.optimizers.lossscaler import LossScaler
from macrobatch.optimizers.momentumsgd import MomentumSGD
from macrobatch.optimizers.nesterovsgd import NesterovSGD
from macrobatch.optimizers.rmsprop import RMSProp
from macrobatch.optimizers.rmspropgraves import RMSPropGraves
from macrobatch.optimizers.sgd import SGD

# every update kernel there is: each optimizer, and the variants that pick another kernel
makers = {
    "SGD": lambda: SGD(0.1), "MomentumSGD": lambda: MomentumSGD(0.1), "NesterovSGD": lambda: NesterovSGD(0.1),
    "Adam": lambda: Adam(1e-2), "Adam-amsgrad": lambda: Adam(1e-2, amsgrad=True), "AdamW": lambda: AdamW(1e-2),
    "RMSProp": lambda: RMSProp(1e-2), "AdaGrad": lambda: AdaGrad(1e-2), "AdaDelta": lambda: AdaDelta(1.0),
    "RMSPropGraves": lambda: RMSPropGraves(1e-2), "RMSPropGraves-momentum": lambda: RMSPropGraves(1e-2, momRate=0.9),
    "LARS": lambda: LARS(0.1),
}


def makeModel(batchNorm=False):
    layers = [Linear(4, 5)] + ([BatchNorm1D(5)] if batchNorm else []) + [Linear(5, 3)]
    model = Sequential(*layers)
    rng = np.random.default_rng(7)
    for var in model.getVariables().values():
        var.data[...] = toDevice(rng.standard_normal(var.shape), var.dtype)
    return model


def masters(optimizer):
    return [toHost(param).copy() for param in optimizer.paramArrays()]


def states(optimizer):
    return [toHost(ary).copy() for _, _, state, _ in optimizer.slots for ary in state]


def setGrads(model, grads):
    """Write host gradients (by parameter name) into the model's Variables, in their dtype."""
    for name, var in model.getVariables().items():
        var.grad[...] = toDevice(grads[name], var.dtype)


def randomGrads(model, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return {name: (rng.standard_normal(var.shape) * scale).astype(np.float32)
            for name, var in model.getVariables().items()}


def test_setup_keeps_float32_masters_and_binds_the_variables_to_16bit_views():
    model = makeModel(batchNorm=True)
    before = {name: toHost(var.data).copy() for name, var in model.getVariables().items()}
    optimizer = Adam().setupOn(model, precision="float16")
    assert [param.dtype for param in optimizer.paramArrays()] == [np.float32]
    assert model.dtype == np.float16 and all(var.grad.dtype == np.float16 for var in model.getVariables().values())
    for name, var in model.getVariables().items():
        np.testing.assert_array_equal(toHost(var.data), before[name].astype(np.float16), err_msg=name)
    flat = masters(optimizer)[0]
    buffer = optimizer.buffers[0]
    for var, offset in zip(buffer.variables, buffer.offsets):
        np.testing.assert_array_equal(flat[offset:offset + var.size], before[
            next(n for n, v in model.getVariables().items() if v is var)].ravel())
    batchNorm = model.children()["1"] if "1" in model.children() else None
    assert batchNorm is not None and batchNorm.attrs["mean"].dtype == np.float32


@pytest.mark.parametrize("name", makers)
def test_a_mixed_step_is_the_float32_step_on_the_unscaled_gradients(name):
    """The masters move exactly as a float32 optimizer's weights given float32(16-bit gradient) / scale, and
    the 16-bit weights are the masters rounded."""
    plain, mixed = makeModel(), makeModel()
    reference = makers[name]().setupOn(plain)
    optimizer = makers[name]().setupOn(mixed, precision="float16", lossScaler=LossScaler(initScale=1024.0))
    for step in range(3):
        grads16 = {key: (g / 8).astype(np.float16) for key, g in randomGrads(plain, step).items()}
        setGrads(plain, {key: g.astype(np.float32) for key, g in grads16.items()})
        setGrads(mixed, {key: g.astype(np.float32) * 1024 for key, g in grads16.items()})
        reference.update()
        optimizer.update()
    for ours, theirs in zip(masters(optimizer), masters(reference)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    for var, ref in zip(mixed.getVariables().values(), plain.getVariables().values()):
        np.testing.assert_array_equal(toHost(var.data), toHost(ref.data).astype(np.float16))


@pytest.mark.parametrize("name", makers)
def test_a_step_with_an_overflowed_gradient_is_skipped_and_leaves_weights_and_state_untouched(name):
    model = makeModel()
    scaler = LossScaler(initScale=256.0)
    optimizer = makers[name]().setupOn(model, precision="float16", lossScaler=scaler)
    setGrads(model, randomGrads(model, 0, scale=256.0))
    optimizer.update()  # a finite step first, so that the state is not all zeros
    weights, state = masters(optimizer), states(optimizer)
    work = {key: toHost(var.data).copy() for key, var in model.getVariables().items()}
    grads = randomGrads(model, 1, scale=256.0)
    grads["0.W"][1, 2] = np.inf
    setGrads(model, grads)
    optimizer.update()
    for ours, saved in zip(masters(optimizer), weights):
        np.testing.assert_array_equal(ours, saved)
    for ours, saved in zip(states(optimizer), state):
        if name != "LARS":  # LARS's trust ratios are recomputed from the gradients every step, not carried
            np.testing.assert_array_equal(ours, saved)
    for key, var in model.getVariables().items():
        np.testing.assert_array_equal(toHost(var.data), work[key], err_msg=key)
    assert scaler.getState()["skippedSteps"] == 1 and scaler.getState()["scale"] == 128.0
    setGrads(model, randomGrads(model, 2, scale=128.0))
    optimizer.update()  # and the next finite step trains again
    assert any(not np.array_equal(ours, saved) for ours, saved in zip(masters(optimizer), weights))


def test_the_loss_scale_grows_after_growth_interval_finite_steps():
    model = makeModel()
    optimizer = SGD(0.01).setupOn(model, precision="float16", lossScaler=LossScaler(initScale=8.0, growthInterval=3))
    for step in range(7):
        setGrads(model, randomGrads(model, step))
        optimizer.update()
    assert optimizer.lossScaler.getState()["scale"] == 32.0
    assert float(toHost(optimizer.lossScale())) == 32.0


def test_hooks_see_the_unscaled_float32_gradients():
    seen = []
    model = makeModel()
    optimizer = SGD(0.1).setupOn(model, precision="float16", lossScaler=LossScaler(initScale=512.0))
    optimizer.addHook(lambda grads: seen.append([toHost(g).copy() for g in grads]))
    optimizer.addHook(ClipByGlobalNorm(1e-3))
    grads = randomGrads(model, 3)
    setGrads(model, {key: g * 512 for key, g in grads.items()})
    optimizer.update()
    flat, = seen[0]
    assert flat.dtype == np.float32
    buffer = optimizer.buffers[0]
    for var, offset in zip(buffer.variables, buffer.offsets):
        name = next(n for n, v in model.getVariables().items() if v is var)
        np.testing.assert_allclose(flat[offset:offset + var.size], grads[name].astype(np.float16).astype(np.float32).ravel(),
                                   rtol=0, atol=0)


def test_bfloat16_has_no_loss_scaler_and_steps_on_every_update():
    pytest.importorskip("ml_dtypes")
    from macrobatch.engine.dtype import bfloat16Dtype
    try:
        dtype = bfloat16Dtype("test")
    except DtypeError as e:
        pytest.skip(str(e))
    model = makeModel()
    optimizer = SGD(0.1).setupOn(model, precision="bfloat16")
    assert optimizer.lossScaler is None and optimizer.lossScale() is None and model.dtype == dtype
    before = masters(optimizer)
    setGrads(model, randomGrads(model, 0))
    optimizer.update()
    assert not np.array_equal(masters(optimizer)[0], before[0])


def test_master_weights_context_shows_float32_and_goes_back_to_16_bits():
    model = makeModel(batchNorm=True)
    optimizer = Adam().setupOn(model, precision="float16")
    setGrads(model, randomGrads(model, 0))
    optimizer.update()
    with optimizer.masterWeights():
        assert model.dtype == np.float32
        inside = {key: toHost(var.data).copy() for key, var in model.getVariables().items()}
        batchNorm = model.children()["1"]
        assert batchNorm.attrs["mean"].dtype == np.float32
    assert model.dtype == np.float16
    for key, var in model.getVariables().items():
        np.testing.assert_array_equal(toHost(var.data), inside[key].astype(np.float16))
    setGrads(model, randomGrads(model, 1))
    optimizer.update()  # the bindings are the ones update checks again


def test_state_round_trip_resumes_exactly():
    def run(split):
        model = makeModel()
        optimizer = Adam(1e-2).setupOn(model, precision="float16", lossScaler=LossScaler(initScale=4.0, growthInterval=2))
        for step in range(6):
            if step == split:
                state = optimizer.getState()
                model = makeModel()
                optimizer = Adam(1e-2).setupOn(model, precision="float16",
                                               lossScaler=LossScaler(initScale=4.0, growthInterval=2))
                optimizer.setState(state)
            grads = randomGrads(model, step, scale=4.0)
            if step == 2:
                grads["1.b"][0] = np.nan
            setGrads(model, grads)
            optimizer.update()
        return masters(optimizer), states(optimizer), optimizer.lossScaler.getState()
    straight, resumed = run(split=None), run(split=3)
    for a, b in zip(straight[0] + straight[1], resumed[0] + resumed[1]):
        np.testing.assert_array_equal(a, b)
    assert straight[2] == resumed[2] and straight[2]["skippedSteps"] == 1


def test_state_of_another_precision_or_without_masters_is_refused_before_anything_changes():
    model = makeModel()
    optimizer = Adam().setupOn(model, precision="float16")
    state = optimizer.getState()
    plain = Adam().setupOn(makeModel())
    with pytest.raises(ModelFileError, match="float16 precision, this optimizer trains in float32"):
        plain.setState(state)
    broken = dict(state, master={})
    with pytest.raises(ModelFileError, match="master weights do not fit"):
        optimizer.setState(broken)
    with pytest.raises(ModelFileError, match="no saved loss-scaler state"):
        optimizer.setState({key: value for key, value in state.items() if key != "lossScaler"})
    with pytest.raises(ModelFileError, match="float32 precision, this optimizer trains in float16"):
        optimizer.setState(plain.getState())


def test_setup_errors_name_the_problem():
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'float16', 'bfloat16', got 'half'"):
        Adam().setupOn(makeModel(), precision="half")
    with pytest.raises(ValueError, match="useGlobalState=True"):
        Adam().setupOn(makeModel(), useGlobalState=False, precision="float16")
    with pytest.raises(DtypeError, match="needs a float32 .* float16 parameters"):
        Adam().setupOn(makeModel().cast(np.float16), precision="float16")
    with pytest.raises(ValueError, match="lossScaler must be a LossScaler, and is for precision='float16' only"):
        Adam().setupOn(makeModel(), lossScaler=LossScaler())


def test_accumulation_unscales_once_per_group_and_matches_float32_accumulation():
    """Two batches' 16-bit gradients add up, one unscale and one scaler update per group; the step is the
    float32 accumulation's on the same (16-bit representable) gradients."""
    plain, mixed = makeModel(), makeModel()
    reference = GradientAccumulation(Adam(1e-2), 2).setupOn(plain)
    scaler = LossScaler(initScale=64.0, growthInterval=2)
    optimizer = GradientAccumulation(Adam(1e-2), 2).setupOn(mixed, precision="float16", lossScaler=scaler)
    for step in range(4):
        # multiples of 1/64 below 4: the 16-bit sums of two of them, times the scale, are exact
        grads16 = {key: (np.round(g * 16) / 64).astype(np.float16) for key, g in randomGrads(plain, step).items()}
        for model, opt, factor in ((plain, reference, 1), (mixed, optimizer, 64)):
            opt.zeroGradParams()
            for name, var in model.getVariables().items():
                var.grad += toDevice(grads16[name].astype(np.float32) * factor, var.dtype)
            opt.update()
    assert optimizer.steps == reference.steps == 2
    assert scaler.getState()["scale"] == 128.0  # two finite group steps: grown once
    for ours, theirs in zip(masters(optimizer.optimizer), masters(reference.optimizer)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
