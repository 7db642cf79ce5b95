"""The command line: the main job end to end, training on a user's file, predicting from a model file."""
import re

import h5py
import numpy as np

from macrobatch.cli import main
from macrobatch.datasets import loadDigits


def test_main_job_trains_the_digits_cnn_from_disk_to_95_percent(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MACROBATCH_CACHE", str(tmp_path / "cache"))
    assert main(["train", "--out", str(tmp_path / "model.h5"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "cache" / "digits.h5").exists() and (tmp_path / "model.h5").exists()
    assert len(re.findall(r"epoch +\d+/15 +loss \S+ +accuracy \S+ +val_loss \S+ +val_accuracy", out)) == 15
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert accuracy >= 0.95, out


def test_train_on_a_user_file_then_predict_with_the_saved_model(tmp_path, capsys):
    images, labels = loadDigits()
    with h5py.File(tmp_path / "user.h5", "w") as f:
        f["data"], f["labels"] = images[:1000], labels[:1000]
        f["val_data"], f["val_labels"] = images[1000:1200], labels[1000:1200]
    model = tmp_path / "mlp.h5"
    assert main(["train", "--data", str(tmp_path / "user.h5"), "--model", "mlp", "--epochs", "5",
                 "--batchsize", "50", "--macrobatch", "300", "--optimizer", "momentum", "--lr", "0.05",
                 "--out", str(model), "--no-progress"]) == 0
    assert "validation accuracy" in capsys.readouterr().out
    with h5py.File(tmp_path / "new.h5", "w") as f:
        f["images"] = images[1200:1500]
    assert main(["predict", str(model), str(tmp_path / "new.h5"), "--dataset", "images", "--macrobatch", "auto",
                 "--out", str(tmp_path / "pred.h5")]) == 0
    assert "macroBatchSize auto = 300 samples (all of the data)" in capsys.readouterr().out
    with h5py.File(tmp_path / "pred.h5") as f:
        assert f["outputs"].shape == (300, 10)
        assert (f["labels"][()] == labels[1200:1500]).mean() > 0.85


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["x"] = np.zeros((10, 4), np.float32)
    assert main(["train", "--data", str(tmp_path / "bad.h5"), "--no-progress"]) == 1
    assert "bad.h5: no dataset 'data'; it holds ['x']" in capsys.readouterr().err


def test_cnn_on_flat_data_suggests_the_mlp(tmp_path, capsys):
    with h5py.File(tmp_path / "flat.h5", "w") as f:
        f["data"], f["labels"] = np.zeros((10, 4), np.float32), np.zeros(10, np.int64)
    assert main(["train", "--data", str(tmp_path / "flat.h5"), "--no-progress", "--out", str(tmp_path / "m.h5")]) == 1
    assert "use --model mlp" in capsys.readouterr().err


def test_train_with_checkpoints_resumes_to_the_same_history_as_a_straight_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MACROBATCH_CACHE", str(tmp_path / "cache"))
    common = ["train", "--model", "mlp", "--no-progress", "--curve", "none", "--seed", "5", "--schedule", "plateau"]
    assert main(common + ["--epochs", "4", "--out", str(tmp_path / "a.h5"), "--csv", str(tmp_path / "a.csv")]) == 0
    assert main(common + ["--epochs", "2", "--out", str(tmp_path / "b.h5"), "--checkpoints", str(tmp_path / "ck"),
                          "--csv", str(tmp_path / "b.csv")]) == 0
    assert main(common + ["--epochs", "4", "--out", str(tmp_path / "b.h5"), "--checkpoints", str(tmp_path / "ck"),
                          "--csv", str(tmp_path / "b.csv"), "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out and (tmp_path / "ck" / "best.h5").exists()
    straight = [line.split(",")[:-1] for line in (tmp_path / "a.csv").read_text().splitlines()]
    resumed = [line.split(",")[:-1] for line in (tmp_path / "b.csv").read_text().splitlines()]
    assert len(straight) == 5 and straight == resumed  # header and 4 epochs: every figure but the time


def test_resume_without_checkpoints_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--resume", "--no-progress", "--out", str(tmp_path / "m.h5")]) == 1
    assert "--resume needs --checkpoints DIR" in capsys.readouterr().err


def test_summary_reads_the_input_shape_from_the_model_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MACROBATCH_CACHE", str(tmp_path / "cache"))
    assert main(["train", "--epochs", "1", "--no-progress", "--curve", "none", "--out", str(tmp_path / "m.h5")]) == 0
    capsys.readouterr()
    assert main(["summary", str(tmp_path / "m.h5"), "--runs", "5"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 6,186" in out and "Input shape: (1, 1, 8, 8)" in out and "Latency (batch 1, 5 runs)" in out


def test_inspect_reports_statistics_and_classes(tmp_path, capsys):
    images, labels = loadDigits()
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"], f["labels"] = images, labels
    assert main(["inspect", str(tmp_path / "d.h5")]) == 0
    out = capsys.readouterr().out
    assert "data: float32 (1797, 1, 8, 8)" in out and "classes: 10" in out and "NaN 0  Inf 0" in out
