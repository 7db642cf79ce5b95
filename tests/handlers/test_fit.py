"""Fit: epochs with validation, history, reproducibility, exact resume, and the callbacks."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed, toDevice, toHost
from macrobatch.engine.dtype import bfloat16Dtype
from macrobatch.engine.errors import DtypeError, ModelFileError
from macrobatch.handlers.callbacks import (CSVLogger, Callback, CurvePlot, EarlyStopping, ModelCheckpoint,
                                           TerminateOnNaN, latestCheckpoint)
from macrobatch.handlers import Validator
from macrobatch.handlers.fit import Fit, predict
from macrobatch.modules import Activation, Linear, Sequential, loadModel
from macrobatch.optimizers import Adam, MomentumSGD


def blobs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return rng.standard_normal((n, 8)).astype(np.float32) + 3 * np.eye(3, 8, dtype=np.float32)[labels], labels


def makeFit(callbacks=(), seed=3, lr=1e-2, optimizer=None):
    setSeed(0)
    net = Sequential(Linear(8, 16), Activation("relu"), Linear(16, 3))
    optimizer = optimizer or Adam(learnRate=lr)
    optimizer.setupOn(net)
    return Fit(net, CrossEntropy(), optimizer, batchsize=32, macroBatchSize=128, callbacks=callbacks, seed=seed)


def weights(net):
    return {key: toHost(ary).copy() for key, ary in net.getState().items()}


def test_fit_trains_validates_and_records_a_history():
    x, y = blobs()
    fit = makeFit()
    history = fit.run(x, y, 5, x[:100], y[:100])
    assert set(history) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learnRate", "time"}
    assert history["epoch"] == [1, 2, 3, 4, 5] and fit.epoch == 5
    assert history["loss"][-1] < 0.3 * history["loss"][0] and history["val_accuracy"][-1] > 0.95
    assert history["learnRate"] == [0.01] * 5


def test_fit_on_device_arrays_trains():
    x, y = blobs()
    onDevice = makeFit().run(toDevice(x), toDevice(y.astype(np.int32)), 3, toDevice(x[:50]), toDevice(y[:50].astype(np.int32)))
    assert onDevice["loss"][-1] < onDevice["loss"][0]


def test_same_seed_gives_bit_identical_training_and_another_seed_does_not():
    x, y = blobs()
    runs = []
    for seed in (3, 3, 4):
        fit = makeFit(seed=seed)
        fit.run(x, y, 3)
        runs.append(weights(fit.mod))
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(np.array_equal(runs[0][k], runs[2][k]) for k in runs[0])


@pytest.mark.parametrize("precision", ["float32", "float16", "bfloat16"])
def test_resuming_from_a_checkpoint_in_a_new_process_is_bit_exact(tmp_path, precision):
    if precision == "bfloat16":
        try:
            bfloat16Dtype("test")
        except DtypeError as e:
            pytest.skip(str(e))
    driver = os.path.join(os.path.dirname(__file__), "resumerun.py")

    def run(mode, folder, out):
        done = subprocess.run([sys.executable, driver, mode, str(folder), str(out), precision], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    run("straight", tmp_path / "a", tmp_path / "straight.npz")
    run("first", tmp_path / "b", tmp_path / "first.npz")
    run("resume", tmp_path / "b", tmp_path / "resumed.npz")
    straight, resumed = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    assert sorted(straight.files) == sorted(resumed.files) and any("attrs" in k for k in straight.files)
    for key in straight.files:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)
    with open(tmp_path / "straight.npz.json") as a, open(tmp_path / "resumed.npz.json") as b:
        history = json.load(a)
        assert json.load(b) == history and len(set(history["learnRate"])) == 4  # the schedule moved each epoch
    assert (history["lossScaler"] is None) == (precision != "float16")
    assert all(straight[key].dtype == np.float32 for key in straight.files)
    assert sorted(os.listdir(tmp_path / "b")) == [f"epoch-000{i}.h5" for i in (1, 2, 3, 4)]


def test_checkpoint_of_another_architecture_is_refused_without_change(tmp_path):
    x, y = blobs(100)
    fit = makeFit()
    fit.run(x, y, 1)
    fit.saveCheckpoint(tmp_path / "c.h5")
    setSeed(0)
    other = Sequential(Linear(8, 4), Activation("relu"), Linear(4, 3))
    optimizer = Adam()
    optimizer.setupOn(other)
    before = weights(other)
    with pytest.raises(ModelFileError, match="has shape"):
        Fit(other, CrossEntropy(), optimizer).resume(tmp_path / "c.h5")
    assert all(np.array_equal(before[k], v) for k, v in weights(other).items())
    with pytest.raises(ModelFileError, match="not a macrobatch checkpoint"):
        fit.resume(_modelFile(fit, tmp_path))


def _modelFile(fit, tmp_path):
    fit.mod.save(tmp_path / "model.h5")
    return tmp_path / "model.h5"


def test_optimizer_state_round_trips_and_refuses_another_kind():
    x, y = blobs(100)
    fit = makeFit()
    fit.run(x, y, 1)
    state = fit.optimizer.getState()
    assert state["steps"] == 4 and set(state["slots"]["0"]) == {"0", "1"}
    fresh = makeFit()
    fresh.optimizer.setState(state)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.optimizer.getState()["slots"]["0"].values(),
                                                    state["slots"]["0"].values()))
    with pytest.raises(ModelFileError, match="does not fit"):
        makeFit(optimizer=MomentumSGD()).optimizer.setState(state)


def test_callbacks_see_every_batch_macrobatch_and_epoch_in_order():
    events = []

    class Recorder(Callback):
        def onTrainBegin(self, fit):
            events.append("begin")

        def onEpochBegin(self, fit):
            events.append(f"epoch{fit.epoch}")

        def onBatchEnd(self, fit):
            events.append("b")

        def onMacroBatchEnd(self, fit):
            events.append("m")

        def onEpochEnd(self, fit, logs):
            events.append(f"end{logs['epoch']}")

        def onTrainEnd(self, fit):
            events.append("done")

    x, y = blobs(200)
    fit = makeFit([Recorder()])
    fit.random = False  # macrobatches of 128 then 72 samples, batches of 32
    fit.run(x, y, 2)
    epoch = ["b"] * 4 + ["m"] + ["b"] * 3 + ["m"]
    assert events == ["begin", "epoch0", *epoch, "end1", "epoch1", *epoch, "end2", "done"]


def test_csv_logger_writes_a_row_per_epoch_and_appends_on_resume(tmp_path):
    x, y = blobs(100)
    fit = makeFit([CSVLogger(tmp_path / "log.csv")])
    fit.run(x, y, 2, x, y)
    fit.run(x, y, 3, x, y)  # continues: epoch 3 appended
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert float(rows[2]["val_loss"]) == pytest.approx(fit.history["val_loss"][2])


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    x, y = blobs()
    snapshots = []

    class Snap(Callback):
        def onEpochEnd(self, fit, logs):
            snapshots.append(weights(fit.mod))

    stopper = EarlyStopping(monitor="val_loss", patience=2, minDelta=1e9)  # nothing after epoch 1 counts
    fit = makeFit([stopper, Snap()])
    history = fit.run(x, y, 10, x[:100], y[:100])
    assert history["epoch"] == [1, 2, 3] and stopper.bestEpoch == 1
    assert all(np.array_equal(v, snapshots[0][k]) for k, v in weights(fit.mod).items())


def test_model_checkpoint_keeps_the_last_k_and_the_best_model(tmp_path):
    x, y = blobs()
    fit = makeFit([ModelCheckpoint(tmp_path, every=1, keepLast=2, monitor="val_accuracy", mode="max")])
    fit.run(x, y, 4, x[:100], y[:100])
    assert sorted(os.listdir(tmp_path)) == ["best.h5", "epoch-0003.h5", "epoch-0004.h5"]
    assert latestCheckpoint(tmp_path).endswith("epoch-0004.h5")
    best = loadModel(tmp_path / "best.h5")
    assert predict(best, x).shape == (400, 3)


def test_terminate_on_nan_stops_cleanly_when_a_figure_is_not_finite():
    class PoisonValidation(Callback):
        def onEpochEnd(self, fit, logs):
            logs["val_loss"] = float("nan")

    stop = TerminateOnNaN()
    x, y = blobs(100)
    fit = makeFit([PoisonValidation(), stop])
    assert fit.run(x, y, 5)["epoch"] == [1] and "val_loss=nan" in stop.reason


def test_curve_plot_writes_a_png_or_names_the_missing_extra(tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install macrobatch\[plot\]"):
            CurvePlot(tmp_path / "curve.png")
        return
    x, y = blobs(100)
    makeFit([CurvePlot(tmp_path / "curve.png")]).run(x, y, 2, x, y)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_returns_outputs_in_input_order_for_host_and_device_data():
    x, y = blobs(130)
    fit = makeFit()
    fit.run(x, y, 1)
    host = predict(fit.mod, x, batchsize=50, macroBatchSize=60)
    np.testing.assert_allclose(host, toHost(fit.mod.evalMode()(toDevice(x))), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predict(fit.mod, toDevice(x)), host, rtol=1e-5, atol=1e-6)


def test_fit_reports_validator_metrics_and_flushes_gradient_accumulation(tmp_path):
    from macrobatch.costs.metrics import ConfusionMatrix, TopKAccuracy
    from macrobatch.optimizers import GradientAccumulation
    x, y = blobs(100)  # 4 batches of 32 (the last of 4): k=3 leaves a partial group each epoch
    setSeed(0)
    net = Sequential(Linear(8, 16), Activation("relu"), Linear(16, 3))
    optimizer = GradientAccumulation(Adam(learnRate=1e-2), 3)
    optimizer.setupOn(net)
    fit = Fit(net, CrossEntropy(), optimizer, batchsize=32, seed=1, callbacks=[CSVLogger(tmp_path / "log.csv")],
              metrics=[TopKAccuracy(2), ConfusionMatrix(3)])
    history = fit.run(x, y, 2, x, y)
    assert optimizer.steps == 4  # 2 per epoch: one full group of 3, one flushed group of 1
    assert len(history["val_top2Accuracy"]) == 2
    assert "val_confusion" not in history and fit.validator.metrics["confusion"].sum() == 100
    fit.saveCheckpoint(tmp_path / "c.h5")


def test_default_seed_comes_from_the_engine_generator():
    setSeed(11)
    first = Fit(Linear(2, 2), CrossEntropy(), Adam().setupOn(Linear(2, 2))).seed
    setSeed(11)
    assert Fit(Linear(2, 2), CrossEntropy(), Adam().setupOn(Linear(2, 2))).seed == first


def test_the_default_validation_cost_keeps_the_training_costs_settings():
    x, y = blobs()
    y[::5] = -100  # ignored rows, in the validation data too
    setSeed(0)
    net = Sequential(Linear(8, 16), Activation("relu"), Linear(16, 3))
    optimizer = Adam(1e-2)
    optimizer.setupOn(net)
    cost = CrossEntropy(weights=[1.0, 2.0, 0.5], ignoreIndex=-100)
    fit = Fit(net, cost, optimizer, batchsize=20, seed=0)
    history = fit.run(x, y, 1, x[:100], y[:100])
    reference = Validator(net, CrossEntropy(weights=[1.0, 2.0, 0.5], ignoreIndex=-100), batchsize=20)
    assert history["val_loss"][0] == pytest.approx(reference.validateFromHost(x[:100], y[:100]), rel=1e-6)
    assert fit.validator.cost is not cost and fit.validator.cost.ignoreIndex == -100
