"""An output place that cannot be written is a clear error naming it before any training; a save that
fails (disk full) raises an error naming the file, keeps the previous file and leaves no temporary.

A folder under a regular file cannot be created by anyone, root included, so it stands for an
unwritable place everywhere; the chmod test runs only where permissions bind (not as root)."""
import errno
import os

import h5py
import numpy as np
import pytest

from macrobatch.cli import main
from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.engine import serialize, toHost
from macrobatch.handlers.callbacks import Callback, CSVLogger, ModelCheckpoint
from macrobatch.handlers.fit import Fit
from macrobatch.modules.linear import Linear
from macrobatch.modules.module import loadModel
from macrobatch.optimizers.sgd import SGD

rng = np.random.default_rng(0)
x = rng.standard_normal((60, 4)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64)


def diskFull(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def blocked(tmp_path):
    """A path no one can make a folder at: it lies under a regular file."""
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "out"


@pytest.fixture
def userFile(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"], f["labels"] = x, y
    return str(tmp_path / "d.h5")


def test_cli_refuses_an_unwritable_out_checkpoints_or_csv_folder_before_reading_data(tmp_path, blocked, userFile,
                                                                                    capsys):
    base = ["train", "--data", userFile, "--model", "mlp", "--epochs", "1", "--no-progress", "--curve", "none"]
    for option, value, named in (("--out", blocked / "m.h5", "--out folder"), ("--checkpoints", blocked, "--checkpoints"),
                                 ("--csv", blocked / "log.csv", "--csv folder")):
        args = base + (["--out", str(tmp_path / "m.h5")] if option != "--out" else []) + [option, str(value)]
        assert main(args) == 1
        captured = capsys.readouterr()
        assert f"{named} {blocked} is not a writable folder" in captured.err
        assert captured.out == ""  # nothing was read or trained
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "file"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders anyway")
def test_cli_refuses_a_read_only_out_folder(tmp_path, userFile, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main(["train", "--data", userFile, "--model", "mlp", "--epochs", "1", "--no-progress",
                     "--curve", "none", "--out", str(folder / "m.h5")]) == 1
    finally:
        folder.chmod(0o700)
    assert f"--out folder {folder} is not a writable folder: Permission denied" in capsys.readouterr().err


def test_fit_callbacks_refuse_an_unwritable_folder_before_the_first_batch(blocked):
    class Batches(Callback):
        count = 0

        def onBatchEnd(self, fit):
            Batches.count += 1

    for callback, named in ((ModelCheckpoint(blocked), "checkpoint folder"), (CSVLogger(blocked / "log.csv"), "CSV folder")):
        net = Linear(4, 2)
        optimizer = SGD()
        optimizer.setupOn(net)
        with pytest.raises(OSError, match=f"{named} {blocked} is not a writable folder"):
            Fit(net, CrossEntropy(), optimizer, batchsize=10, callbacks=[Batches(), callback]).run(x, y, 1)
    assert Batches.count == 0


def savedWeights(path):
    return toHost(loadModel(path).vars["W"].data).copy()


@pytest.mark.parametrize("where", ["fsync", "h5py write"])
def test_disk_full_at_save_names_the_file_keeps_the_previous_one_and_leaves_no_temporary(tmp_path, monkeypatch,
                                                                                        where):
    path = tmp_path / "m.h5"
    net = Linear(4, 2)
    net.save(path)
    before = savedWeights(path)
    net.vars["W"].data += 1
    if where == "fsync":
        monkeypatch.setattr(os, "fsync", diskFull)
    else:
        monkeypatch.setattr(h5py.Group, "create_dataset", diskFull)
    with pytest.raises(OSError, match=f"cannot write {path}: No space left on device") as raised:
        net.save(path)
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.undo()
    np.testing.assert_array_equal(savedWeights(path), before)
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]


def test_disk_full_at_a_checkpoint_stops_training_naming_it_and_keeps_the_last_one(tmp_path, monkeypatch):
    net = Linear(4, 2)
    optimizer = SGD()
    optimizer.setupOn(net)

    class FillDiskAfterFirstEpoch(Callback):
        def onEpochEnd(self, fit, logs):
            monkeypatch.setattr(os, "fsync", diskFull)

    fit = Fit(net, CrossEntropy(), optimizer, batchsize=10, callbacks=[ModelCheckpoint(tmp_path / "ck"),
                                                                       FillDiskAfterFirstEpoch()])
    with pytest.raises(OSError, match="cannot write .*epoch-0002.h5: No space left on device"):
        fit.run(x, y, 3)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["epoch-0001.h5"]
    net2 = Linear(4, 2)
    optimizer2 = SGD()
    optimizer2.setupOn(net2)
    assert Fit(net2, CrossEntropy(), optimizer2).resume(tmp_path / "ck" / "epoch-0001.h5").epoch == 1


def test_check_writable_leaves_the_disk_as_it_was(tmp_path):
    serialize.checkWritable(tmp_path / "a" / "b", "--out folder")
    serialize.checkWritable(tmp_path, "--out folder")
    assert list(tmp_path.iterdir()) == []


def test_cli_run_failing_on_its_data_creates_no_output_folders(tmp_path, capsys):
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["x"] = x
    assert main(["train", "--data", str(tmp_path / "bad.h5"), "--no-progress", "--out", str(tmp_path / "o" / "m.h5"),
                 "--checkpoints", str(tmp_path / "ck"), "--csv", str(tmp_path / "logs" / "log.csv")]) == 1
    assert "no dataset 'data'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]
