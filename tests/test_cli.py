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
    assert len(re.findall(r"epoch +\d+/15 +train loss .* val loss .* acc", out)) == 15
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
    assert main(["predict", str(model), str(tmp_path / "new.h5"), "--dataset", "images",
                 "--out", str(tmp_path / "pred.h5")]) == 0
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
