"""`macrobatch train` on a file of several targets ('labels', 'labels_1', ... or the datasets --labels names)
trains one head per target on a shared trunk, reports each head, resumes and predicts; a missing or
mismatched target dataset is refused naming it."""
import re

import h5py
import numpy as np
import pytest


def brightness(images):
    """A regression target each image determines: its mean ink, standardised."""
    ink = images.reshape(len(images), -1).mean(axis=1)
    return ((ink - ink.mean()) / ink.std()).astype(np.float32)


def halves(images):
    """Two values per image: the standardised ink of its top and bottom halves."""
    top, bottom = images[:, 0, :4].reshape(len(images), -1), images[:, 0, 4:].reshape(len(images), -1)
    values = np.stack([top.mean(axis=1), bottom.mean(axis=1)], axis=1)
    return ((values - values.mean(axis=0)) / values.std(axis=0)).astype(np.float32)


@pytest.fixture
def twoTargets(digitsFile, digits):
    """write(name="two.h5", **extra) -> a digits file with class 'labels' and regression 'labels_1', with
    validation and test splits of both; extra datasets replace (None: drop) those."""
    images, labels = digits
    values = brightness(images)

    def write(name="two.h5", **extra):
        datasets = dict(labels_1=values[:1000], val_labels_1=values[1000:1200], test_data=images[1200:1500],
                        test_labels=labels[1200:1500], test_labels_1=values[1200:1500])
        return digitsFile(name, **(datasets | extra))
    return write


def epochFigures(stdout):
    """{figure: [value per epoch]} from the per-epoch lines."""
    rows = [dict(re.findall(r"(\S+) ([-0-9.e]+)", line.split("  ", 1)[1])) for line in stdout.splitlines()
            if line.startswith("epoch")]
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


def test_a_class_and_a_regression_target_train_a_head_each_and_predict_matches_the_test_figures(
        cli, twoTargets, digits, tmp_path):
    images, labels = digits
    run = cli("train", "--data", twoTargets(), "--model", "mlp", "--epochs", "5", "--curve", "none", "--out", "m.h5")
    assert run.returncode == 0, run.stderr
    assert "targets 0: labels (10 classes), 1: labels_1 (regression)" in run.stdout
    history = epochFigures(run.stdout)
    for key in ("loss", "0.error", "1.error", "val_loss", "val_0.error", "val_1.error"):
        assert history[key][-1] < 0.6 * history[key][0], (key, history[key])
    assert history["val_0.accuracy"][-1] > 0.85
    final = re.search(r"test loss ([0-9.]+): labels accuracy ([0-9.]+) \(loss ([0-9.]+)\), labels_1 mse ([0-9.e-]+)",
                      run.stdout)
    assert final, run.stdout
    loss, accuracy, classLoss, mse = map(float, final.groups())
    assert loss == pytest.approx(classLoss + mse, abs=2e-4)

    predicted = cli("predict", "m.h5", "two.h5", "--dataset", "test_data", "--out", "p.h5")
    assert predicted.returncode == 0, predicted.stderr
    assert ("outputs (300, 10) probabilities of labels, labels (argmax); outputs_1 (300,) values of labels_1"
            in predicted.stdout)
    with h5py.File(tmp_path / "p.h5") as p:
        probabilities, values = p["outputs"][()], p["outputs_1"][()]
        assert p["outputs"].attrs["target"] == "labels" and p["outputs_1"].attrs["kind"] == "values"
        assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
        np.testing.assert_array_equal(p["labels"][()], probabilities.argmax(axis=1))
        assert "labels_1" not in p  # a regression head has no argmax
    assert (probabilities.argmax(axis=1) == labels[1200:1500]).mean() == pytest.approx(accuracy, abs=1e-4)
    assert np.mean((values - brightness(images)[1200:1500]) ** 2) == pytest.approx(mse, rel=1e-3)


def test_targets_named_with_labels_train_a_cnn_with_a_regression_of_two_values(cli, digitsFile, digits, tmp_path):
    images, labels = digits
    values = halves(images)
    data = digitsFile(age=values[:1000], val_age=values[1000:1200])
    run = cli("train", "--data", data, "--labels", "age,labels", "--epochs", "4", "--curve", "none", "--out", "m.h5")
    assert run.returncode == 0, run.stderr
    assert "targets 0: age (regression of shape (2,)), 1: labels (10 classes)" in run.stdout
    history = epochFigures(run.stdout)
    assert history["0.error"][-1] < 0.5 * history["0.error"][0]
    assert history["val_0.error"][-1] < 0.4  # standardised values: predicting their mean scores 1
    assert re.search(r"validation loss \S+: age mse \S+, labels accuracy 0\.[89]", run.stdout), run.stdout
    predicted = cli("predict", "m.h5", data, "--logits", "--out", "p.h5")
    assert predicted.returncode == 0, predicted.stderr
    with h5py.File(tmp_path / "p.h5") as p:
        assert p["outputs"].shape == (1000, 2) and p["outputs"].attrs["target"] == "age"
        assert p["outputs_1"].attrs["kind"] == "logits" and "labels_1" in p and "labels" not in p


def test_a_resumed_run_equals_a_straight_one_and_refuses_a_file_with_other_targets(cli, twoTargets, tmp_path,
                                                                                     readCsvRows, digits):
    data = twoTargets()
    options = ["--data", data, "--model", "mlp", "--batchsize", "50", "--macrobatch", "300", "--curve", "none"]
    straight = cli("train", *options, "--epochs", "3", "--csv", "a.csv", "--out", "a.h5")
    first = cli("train", *options, "--epochs", "2", "--csv", "b.csv", "--out", "b.h5", "--checkpoints", "ck")
    assert straight.returncode == 0 and first.returncode == 0, straight.stderr + first.stderr
    resumed = cli("train", "--resume", "--checkpoints", "ck", "--epochs", "3")
    assert resumed.returncode == 0, resumed.stderr
    assert "1: labels_1 (regression)" in resumed.stdout
    rows = readCsvRows(tmp_path / "a.csv")
    assert rows == readCsvRows(tmp_path / "b.csv") and "1.error" in rows[0] and "val_0.accuracy" in rows[0]

    named = cli("train", "--resume", "--checkpoints", "ck", "--epochs", "4", "--labels", "labels")
    assert named.returncode == 1 and "--labels None" in named.stderr and "--labels labels" in named.stderr, \
        named.stderr
    with h5py.File(data, "a") as f:
        f["labels_2"] = digits[1][:1000]
    grown = cli("train", "--resume", "--checkpoints", "ck", "--epochs", "4")
    assert grown.returncode == 1
    assert ("continues a run on the targets ['labels', 'labels_1'], but the data file now gives ['labels', "
            "'labels_1', 'labels_2']") in grown.stderr, grown.stderr


@pytest.mark.parametrize("extra, options, message", [
    (dict(val_labels_1=None), [],
     r"\['val_data', 'val_labels'\] without \['val_labels_1'\]; 'val_data' goes with one dataset per target"),
    (dict(test_data=None), [], r"\['test_labels', 'test_labels_1'\] without \['test_data'\]"),
    (dict(labels_1=np.zeros(999, np.float32)), [], r"labels_1 holds 999 samples, but data holds 1000"),
    (dict(val_labels_1=np.zeros((200, 3), np.float32)), [],
     r"val_labels_1 holds values of shape \(3,\), but labels_1's are \(\); they must match"),
    (dict(labels_1=np.arange(1000) % 3, val_labels_1=np.full(200, 5), test_labels_1=np.arange(300) % 3), [],
     r"val_labels_1 holds classes that never occur in training: \[5\]"),
    (dict(labels_1=np.arange(1000) % 3, val_labels_1=np.arange(200) % 3), [],
     r"test_labels_1: labels must be integer class indices 0..K-1, got float32"),
    (dict(labels_1=np.array([b"a"] * 1000)), [], r"labels_1: labels must be integer class indices 0..K-1, got strings"),
    ({}, ["--labels", "labels,agee"], r"no dataset 'agee'; it holds \["),
    ({}, ["--labels", "labels,,labels_1"], r"--labels labels,,labels_1: give the target datasets' names once each"),
])
def test_a_missing_or_mismatched_target_dataset_is_refused_naming_it(cli, twoTargets, extra, options, message):
    run = cli("train", "--data", twoTargets(**extra), "--model", "mlp", "--epochs", "1", "--curve", "none", *options)
    assert run.returncode == 1 and re.search(message, run.stderr), run.stderr
    assert "Traceback" not in run.stderr


def test_labels_1_without_labels_2_stops_at_the_gap(cli, twoTargets, digits):
    data = twoTargets(labels_3=digits[1][:1000])
    run = cli("train", "--data", data, "--model", "mlp", "--epochs", "1", "--curve", "none")
    assert run.returncode == 0, run.stderr
    assert "1: labels_1 (regression)), mlp" in run.stdout  # labels_3 is not a target


def test_val_split_validates_every_target_on_the_files_tail(cli, twoTargets):
    data = twoTargets(val=0, val_labels_1=None, test_data=None, test_labels=None, test_labels_1=None)
    run = cli("train", "--data", data, "--model", "mlp", "--epochs", "3", "--val-split", "0.2", "--curve", "none")
    assert run.returncode == 0, run.stderr
    assert "(800 samples of (1, 8, 8), targets 0: labels (10 classes), 1: labels_1 (regression))" in run.stdout
    assert re.search(r"validation loss \S+: labels accuracy 0\.[89]\d+ \(loss \S+\), labels_1 mse 0\.\d", run.stdout), \
        run.stdout
