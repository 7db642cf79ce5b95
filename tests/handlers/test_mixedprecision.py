"""Mixed precision through the handlers: Trainer(precision=...), 16-bit uploads, the loss scaler rescuing
overflowing steps, what still stops training, float32 scoring, and Fit's float32 master weights."""
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed, toDevice, toHost
from macrobatch.engine.errors import NonFiniteError
from macrobatch.handlers import Trainer, Validator
from macrobatch.handlers.callbacks import EarlyStopping, ModelCheckpoint
from macrobatch.handlers.fit import Fit
from macrobatch.modules import Activation, BatchNorm, Linear, Sequential, loadModel
from macrobatch.optimizers import Adam
from macrobatch.optimizers.lossscaler import LossScaler


def blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return rng.standard_normal((n, 8)).astype(np.float32) + 3 * np.eye(3, 8, dtype=np.float32)[labels], labels


def makeNet():
    setSeed(0)
    return Sequential(Linear(8, 32), BatchNorm(32), Activation("relu"), Linear(32, 3))


def accuracy(net, x, y):
    validator = Validator(net, CrossEntropy())
    validator.validateFromHost(x, y)
    return validator.cost.getMetrics()["accuracy"]


def test_trainer_precision_sets_the_optimizer_up_in_it_uploads_16_bits_and_trains_like_float32():
    x, y = blobs()
    results = {}
    for precision in ("float32", "float16"):
        net = makeNet()
        optimizer = Adam(1e-2).setupOn(net)
        trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=32, precision=precision)
        assert optimizer.precision == precision and trainer.dataDtype == np.dtype(precision)
        for _ in range(4):
            trainer.trainFromHost(x, y, macroBatchSize=200)
        with optimizer.masterWeights():
            results[precision] = accuracy(net, x, y)
    assert results["float32"] > 0.95 and abs(results["float16"] - results["float32"]) < 0.02


def test_changing_the_precision_after_steps_is_refused():
    x, y = blobs(100)
    net = makeNet()
    optimizer = Adam().setupOn(net)
    Trainer(net, CrossEntropy(), optimizer, batchsize=50).trainFromHost(x, y)
    with pytest.raises(ValueError, match="losing 2 steps of its float32 state"):
        Trainer(net, CrossEntropy(), optimizer, precision="float16")


@pytest.mark.parametrize("onNonFinite", ["raise", "skip"])
def test_overflowing_scaled_gradients_skip_steps_and_back_off_instead_of_stopping(onNonFinite):
    """A scale of 2**40 overflows float16 at once: the first steps are skipped, the scale backs off until
    the gradients fit, and training goes on to the accuracy of a run that never overflowed."""
    x, y = blobs()
    net = makeNet()
    scaler = LossScaler(initScale=2.0 ** 40)
    optimizer = Adam(1e-2).setupOn(net, precision="float16", lossScaler=scaler)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=32, onNonFinite=onNonFinite)
    for _ in range(4):
        trainer.trainFromHost(x, y, macroBatchSize=200)
    state = scaler.getState()
    assert 10 <= state["skippedSteps"] <= 30 and state["scale"] < 2.0 ** 20
    assert trainer.skippedBatches == 0  # the scaler's skips are not the Trainer's
    with optimizer.masterWeights():
        assert accuracy(net, x, y) > 0.95


def test_plain_float16_training_diverges_where_mixed_precision_trains():
    """The control for the test above: the model cast to float16 and Adam on its 16-bit weights (no float32
    masters, no scaling) breaks down at once: gradients squared underflow float16, and so does epsilon, so
    m / (sqrt(v) + epsilon) is 0 / 0."""
    x, y = blobs()
    net = makeNet().cast(np.float16)
    trainer = Trainer(net, CrossEntropy(), Adam(1e-2).setupOn(net), batchsize=32)
    with pytest.raises(NonFiniteError, match="became nan"), np.errstate(all="ignore"):
        trainer.trainFromHost(x, y, macroBatchSize=200)


def test_a_nan_loss_still_stops_a_scaled_run():
    x, y = blobs(200)
    x[70, 3] = np.nan
    net = makeNet()
    optimizer = Adam().setupOn(net, precision="float16")
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=32, checkFinite=False)
    with pytest.raises(NonFiniteError, match="training loss became nan"):
        trainer.trainFromHost(x, y, macroBatchSize=200, random=False)


def test_a_16_bit_model_is_scored_in_float32():
    """The Validator's error on the float16 model equals the float32 cross-entropy of its float16 outputs:
    the softmax and the mean are not taken in float16."""
    x, y = blobs(300)
    net = makeNet()
    Adam().setupOn(net, precision="float16")
    net.evalMode()
    logits = toHost(net(toDevice(x.astype(np.float16)))).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    expected = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(300), y])
    validator = Validator(net, CrossEntropy())
    validator.validateFromHost(x, y)
    assert validator.cost.getError() == pytest.approx(expected, rel=1e-5)


def test_fit_keeps_float32_master_weights_in_checkpoints_best_weights_and_saved_models(tmp_path):
    x, y = blobs()
    net = makeNet()
    optimizer = Adam(1e-2).setupOn(net, precision="float16")
    fit = Fit(net, CrossEntropy(), optimizer, batchsize=32, macroBatchSize=200, seed=1,
              callbacks=[ModelCheckpoint(tmp_path, monitor="val_loss"), EarlyStopping(patience=1)])
    fit.run(x, y, 3, x[:100], y[:100])
    assert net.dtype == np.float16  # the model trains on
    state = fit.modelState()
    assert all(ary.dtype == np.float32 for ary in state.values())
    with optimizer.masterWeights():
        masters = {key: toHost(ary).copy() for key, ary in net.getState().items()}
    for key, ary in state.items():
        np.testing.assert_array_equal(ary, masters[key], err_msg=key)
    best = loadModel(tmp_path / "best.h5")
    assert best.dtype == np.float32


def bfloat16():
    """ml_dtypes' bfloat16, or a skip saying why this backend has none."""
    from macrobatch.engine.dtype import bfloat16Dtype
    from macrobatch.engine.errors import DtypeError
    try:
        return bfloat16Dtype("test")
    except DtypeError as e:
        pytest.skip(str(e))


def test_bfloat16_trains_uploads_bfloat16_and_checks_its_host_data_for_nan():
    dtype = bfloat16()
    x, y = blobs()
    net = makeNet()
    optimizer = Adam(1e-2).setupOn(net, precision="bfloat16")
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=32)
    assert trainer.dataDtype == dtype and optimizer.lossScale() is None
    for _ in range(4):
        trainer.trainFromHost(x.astype(dtype), y, macroBatchSize=200)
    with optimizer.masterWeights():
        assert accuracy(net, x, y) > 0.95
    bad = x.astype(dtype)
    bad[123, 4] = np.nan
    with pytest.raises(NonFiniteError, match="NaN or Inf in sample 123"):
        trainer.trainFromHost(bad, y, macroBatchSize=200)


def test_gradients_beyond_float16s_range_train_with_loss_scaling_where_plain_float16_stops():
    """A regression on the digits with targets in the thousands (label x 1000): its gradients overflow
    float16 even unscaled. Mixed float16 backs the scale off below 1 (skipping those steps) and reaches
    float32's validation error; plain float16 training stops at its first Inf gradient."""
    from macrobatch import models
    from macrobatch.costs import MSE
    from macrobatch.datasets import loadDigits
    from macrobatch.optimizers import SGD
    images, labels = loadDigits()
    data, values = images.reshape(len(images), -1), (labels.astype(np.float32) * 1000)[:, None]
    results = {}
    for mode in ("float32", "float16", "plain float16"):
        setSeed(0)
        net = models.mlp(64, 1)
        if mode == "plain float16":
            net.cast(np.float16)
        optimizer = SGD(1e-6).setupOn(net, precision="float16" if mode == "float16" else "float32")
        fit = Fit(net, MSE(), optimizer, batchsize=32, macroBatchSize=1000, seed=0)
        if mode == "plain float16":
            # the CPU stops at the first Inf gradient; the GPU at the end of that macrobatch, whose loss is NaN by then
            with pytest.raises(NonFiniteError, match="gradients became NaN or Inf|loss became nan"), \
                    np.errstate(all="ignore"):
                fit.run(data[:1000], values[:1000], 5)
            continue
        results[mode] = fit.run(data[:1000], values[:1000], 5, data[1000:], values[1000:])["val_loss"][-1]
        scaler = optimizer.lossScaler
    state = scaler.getState()
    assert state["skippedSteps"] >= 10 and state["scale"] < 1
    assert results["float16"] == pytest.approx(results["float32"], rel=0.1)
