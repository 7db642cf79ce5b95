"""Ctrl-C during Fit.run stops after the current batch, never inside an update, runs onInterrupt, raises
KeyboardInterrupt again, and leaves the checkpoint of the last completed epoch to resume from; the
command line says from which epoch --resume goes on and exits with 130."""
import os
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from macrobatch.cli import main
from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.engine import setSeed
from macrobatch.engine.errors import ModelFileError
from macrobatch.handlers.callbacks import Callback, CSVLogger, ModelCheckpoint, latestCheckpoint
from macrobatch.handlers.callbacks.modelcheckpoint import checkpoints
from macrobatch.handlers.fit import Fit
from macrobatch.modules.activation import Activation
from macrobatch.modules.dropout import Dropout
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential
from macrobatch.optimizers.adam import Adam

rng = np.random.default_rng(0)
x = rng.standard_normal((200, 6)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def onBatchEnd(self, fit):
        self.events.append(("batch", fit.epoch, fit.trainer.currBatch))

    def onEpochEnd(self, fit, logs):
        self.events.append(("epoch", fit.epoch))

    def onTrainEnd(self, fit):
        self.events.append(("end",))

    def onInterrupt(self, fit):
        self.events.append(("interrupt", fit.epoch))


def makeFit(callbacks=(), seed=3, macroBatchSize=100, dropout=False):
    setSeed(1)
    net = Sequential(Linear(6, 16), Activation("relu"), *([Dropout(0.3)] if dropout else []), Linear(16, 3))
    optimizer = Adam(learnRate=0.01)
    optimizer.setupOn(net)
    return Fit(net, CrossEntropy(), optimizer, batchsize=20, macroBatchSize=macroBatchSize, seed=seed,
               callbacks=callbacks)


def interruptDuringUpdate(fit, atUpdate, presses=1):
    """Send SIGINT presses times from inside the atUpdate-th optimizer update (counted from 1), before
    that update runs; returns the list of updates that completed."""
    done, update = [], fit.optimizer.update

    def interrupted():
        if len(done) + 1 == atUpdate:
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)
        update()
        done.append(len(done) + 1)

    fit.optimizer.update = interrupted
    return done


def test_ctrl_c_finishes_the_current_batch_then_runs_on_interrupt_and_reraises():
    recorder = Recorder()
    fit = makeFit([recorder])
    done = interruptDuringUpdate(fit, atUpdate=13)  # 10 batches an epoch: the third of epoch 2
    with pytest.raises(KeyboardInterrupt):
        fit.run(x, y, epochs=5)
    assert done == list(range(1, 14))  # the update in progress completed, and no other batch began
    assert recorder.events[-2:] == [("batch", 1, 2), ("interrupt", 1)]  # no onTrainEnd
    assert fit.epoch == 1 and len(fit.history["loss"]) == 1  # the interrupted epoch is not counted
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_interrupts_at_once():
    recorder = Recorder()
    fit = makeFit([recorder])
    done = interruptDuringUpdate(fit, atUpdate=4, presses=2)
    with pytest.raises(KeyboardInterrupt):
        fit.run(x, y, epochs=5)
    assert done == [1, 2, 3] and recorder.events[-1] == ("interrupt", 0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_validation_stops_after_that_batch_without_counting_the_epoch():
    recorder = Recorder()
    fit = makeFit([recorder])
    validated = []

    def onValidationBatch(handler):
        validated.append(handler.currBatch)
        if len(validated) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        fit.checkInterrupt()

    fit.validator.onBatchFinish = onValidationBatch
    with pytest.raises(KeyboardInterrupt):
        fit.run(x, y, epochs=3, valData=x, valTarget=y)
    assert validated == [0, 1] and fit.epoch == 0 and recorder.events[-1] == ("interrupt", 0)


def test_a_keyboard_interrupt_raised_elsewhere_still_reaches_on_interrupt():
    class Raiser(Recorder):
        def onBatchEnd(self, fit):
            super().onBatchEnd(fit)
            if fit.epoch == 1 and fit.trainer.currBatch == 4:
                raise KeyboardInterrupt

    recorder = Raiser()
    fit = makeFit([recorder])
    with pytest.raises(KeyboardInterrupt):
        fit.run(x, y, epochs=3)
    assert recorder.events[-1] == ("interrupt", 1)


def test_interrupted_run_resumes_from_the_last_completed_epoch_exactly(tmp_path):
    straight = makeFit()
    straight.run(x, y, epochs=4)
    first = makeFit([ModelCheckpoint(tmp_path, keepLast=None)])
    interruptDuringUpdate(first, atUpdate=25)  # epoch 3, batch 5
    with pytest.raises(KeyboardInterrupt):
        first.run(x, y, epochs=4)
    latest = latestCheckpoint(tmp_path)
    assert os.path.basename(latest) == "epoch-0002.h5"
    resumed = makeFit([ModelCheckpoint(tmp_path, keepLast=None)]).resume(latest)
    resumed.run(x, y, epochs=4)
    assert resumed.epoch == 4
    for key in ("loss", "accuracy", "learnRate"):
        assert resumed.history[key] == straight.history[key]
    for key, ary in straight.mod.getState().items():
        np.testing.assert_array_equal(resumed.mod.getState()[key], ary)


def test_interrupted_run_resumes_mid_epoch_from_the_last_macrobatch_checkpoint_exactly(tmp_path):
    """4 macrobatches of 50 samples (3 batches each) an epoch; Ctrl-C in the second batch of epoch 2's
    third macrobatch leaves the checkpoint after its second; the resumed run, with Dropout drawing masks
    and samples shuffled, ends bit-identical to a straight one, with the same epoch losses."""
    straight = makeFit(macroBatchSize=50, dropout=True)
    straight.run(x, y, epochs=3)
    first = makeFit([ModelCheckpoint(tmp_path, keepLast=None, everyMacroBatches=1)], macroBatchSize=50, dropout=True)
    interruptDuringUpdate(first, atUpdate=12 + 8)
    with pytest.raises(KeyboardInterrupt):
        first.run(x, y, epochs=3)
    latest = latestCheckpoint(tmp_path)
    assert os.path.basename(latest) == "epoch-0001-mb000002.h5"
    assert "epoch-0001-mb000004.h5" not in os.listdir(tmp_path)  # an epoch's end is epoch-NNNN.h5 only
    resumed = makeFit([ModelCheckpoint(tmp_path, keepLast=None, everyMacroBatches=1)], macroBatchSize=50,
                      dropout=True).resume(latest)
    assert (resumed.epoch, resumed.position) == (1, 2)
    resumed.run(x, y, epochs=3)
    for key in ("loss", "accuracy", "learnRate"):
        assert resumed.history[key] == straight.history[key]
    for key, ary in straight.mod.getState().items():
        np.testing.assert_array_equal(resumed.mod.getState()[key], ary)
    assert os.path.basename(latestCheckpoint(tmp_path)) == "epoch-0003.h5"


def test_checkpoints_sort_by_epoch_then_macrobatch(tmp_path):
    for name in ("epoch-0002.h5", "epoch-0001-mb000010.h5", "epoch-0001.h5", "epoch-0001-mb000002.h5", "x.h5"):
        (tmp_path / name).touch()
    assert [os.path.basename(p) for p in checkpoints(tmp_path)] == [
        "epoch-0001.h5", "epoch-0001-mb000002.h5", "epoch-0001-mb000010.h5", "epoch-0002.h5"]


def test_csv_log_drops_rows_of_epochs_after_the_resumed_checkpoint(tmp_path):
    log = tmp_path / "log.csv"
    makeFit([CSVLogger(log)]).run(x, y, epochs=3)
    rows = log.read_text().splitlines()
    fit = makeFit([CSVLogger(log)])
    fit.epoch = 1  # as if resumed from the checkpoint of epoch 1 after a crash in epoch 3

    def interrupted(*args):
        raise KeyboardInterrupt

    fit.runEpoch = interrupted
    with pytest.raises(KeyboardInterrupt):
        fit.run(x, y, epochs=3)
    assert log.read_text().splitlines() == rows[:2]


@pytest.mark.slow
def test_cli_train_on_sigint_exits_130_naming_the_epoch_resume_continues_from(tmp_path, capsys):
    data = rng.standard_normal((3000, 64)).astype(np.float32)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"], f["labels"] = data, (data[:, 0] > 0).astype(np.int64)
    args = ["train", "--data", str(tmp_path / "d.h5"), "--model", "mlp", "--epochs", "8", "--batchsize", "16",
            "--no-progress", "--curve", "none", "--out", str(tmp_path / "m.h5"),
            "--checkpoints", str(tmp_path / "ck"), "--csv", str(tmp_path / "log.csv")]
    child = subprocess.Popen([sys.executable, "-m", "macrobatch.cli", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in child.stdout:
        if re.match(r"epoch +1/8", line):
            break
    time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    latest = latestCheckpoint(tmp_path / "ck")
    done = int(re.search(r"epoch-(\d+)\.h5", latest).group(1))
    assert 1 <= done < 8
    assert f"{latest} holds {done} completed epoch(s)" in err
    assert f"--resume to continue from epoch {done + 1}" in err and "Traceback" not in err
    assert not (tmp_path / "m.h5").exists()
    assert main(args + ["--resume"]) == 0
    assert f"resumed from {latest} after epoch {done}" in capsys.readouterr().out
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch"] + [str(e) for e in range(1, 9)]
    assert (tmp_path / "m.h5").exists() and os.path.basename(latestCheckpoint(tmp_path / "ck")) == "epoch-0008.h5"


def test_cli_interrupt_without_checkpoints_says_nothing_can_be_resumed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MACROBATCH_CACHE", str(tmp_path / "cache"))

    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(Fit, "runEpoch", interrupted)
    assert main(["train", "--model", "mlp", "--no-progress", "--curve", "none", "--out", str(tmp_path / "m.h5")]) == 130
    err = capsys.readouterr().err
    assert "stopped in epoch 1 of 15; no checkpoints were written (pass --checkpoints DIR" in err


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"keepLast": 0}, {"everyMacroBatches": 0}])
def test_checkpoint_intervals_below_one_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError, match="every, keepLast and everyMacroBatches must be at least 1"):
        ModelCheckpoint(tmp_path, **kwargs)


def test_a_start_macrobatch_outside_the_walk_is_refused():
    with pytest.raises(ValueError, match=r"startMacroBatch must be in 0..2, got 3"):
        makeFit().trainer.trainFromHost(x, y, macroBatchSize=100, startMacroBatch=3)


def test_a_mid_epoch_checkpoint_is_resumed_with_its_macrobatch_size_auto_takes_it_another_is_refused(tmp_path):
    first = makeFit([ModelCheckpoint(tmp_path, keepLast=None, everyMacroBatches=1)], macroBatchSize=50)
    interruptDuringUpdate(first, atUpdate=12 + 8)
    with pytest.raises(KeyboardInterrupt):
        first.run(x, y, epochs=3)
    latest = latestCheckpoint(tmp_path)
    with pytest.raises(ModelFileError, match=r"between two macrobatches of 50 samples; resume it with macroBatchSize "
                                             r"50 or 'auto' \(this run has 100\)"):
        makeFit(macroBatchSize=100).resume(latest)
    resumed = makeFit(macroBatchSize="auto").resume(latest)
    assert resumed.macroBatchSize == 50
    straight = makeFit(macroBatchSize=50)
    straight.run(x, y, epochs=3)
    resumed.run(x, y, epochs=3)
    assert resumed.history["loss"] == straight.history["loss"]
