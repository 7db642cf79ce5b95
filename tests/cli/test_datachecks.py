"""Data checks of `macrobatch train` before anything trains, each a message saying what and how to fix it."""
import h5py
import numpy as np


def test_validation_classes_never_seen_in_training_are_refused(cli, digitsFile, digits):
    images, labels = digits
    order = np.argsort(labels, kind="stable")  # a class-sorted file, split at the end
    data = digitsFile(val=0, **{"data": images[order[:1400]], "labels": labels[order[:1400]],
                                             "test_data": images[order[1400:]], "test_labels": labels[order[1400:]]})
    run = cli("train", "--data", data, "--model", "mlp", "--epochs", "1", "--curve", "none")
    assert run.returncode == 1
    assert "test_labels holds classes that never occur in training: [8, 9]" in run.stderr, run.stderr
    assert "sorted by class" in run.stderr and "macrobatch convert FILE --shuffle" in run.stderr


def test_labels_whose_range_implies_far_more_classes_than_occur_are_refused(cli, digitsFile):
    data = digitsFile(val=0, labels=np.tile(np.array([0, 1000, 2000]), 334)[:1000])
    run = cli("train", "--data", data, "--model", "mlp", "--epochs", "1", "--curve", "none")
    assert run.returncode == 1
    assert "0..2000, which makes 2001 classes, but only 3 occur ([0, 1000, 2000])" in run.stderr, run.stderr
    assert "numpy.unique(labels, return_inverse=True)" in run.stderr


def test_string_and_float_labels_are_refused_naming_what_they_are(cli, digitsFile):
    strings = digitsFile("s.h5", val=0, labels=np.array([b"cat", b"dog"] * 500))
    run = cli("train", "--data", strings, "--model", "mlp", "--epochs", "1", "--curve", "none")
    assert run.returncode == 1 and "labels: labels must be integer class indices 0..K-1, got strings" in run.stderr, \
        run.stderr
    floats = digitsFile("f.h5", val=0, labels=np.zeros(1000, np.float32))
    run = cli("train", "--data", floats, "--model", "mlp", "--epochs", "1", "--curve", "none")
    assert run.returncode == 1 and "got float32" in run.stderr, run.stderr


def test_validation_samples_of_another_shape_are_refused(cli, digitsFile):
    data = digitsFile(val=0, val_data=np.zeros((50, 1, 7, 7), np.float32), val_labels=np.zeros(50, np.int64))
    run = cli("train", "--data", data, "--epochs", "1", "--curve", "none")
    assert run.returncode == 1
    assert "val_data holds samples of shape (1, 7, 7), but the training data's are (1, 8, 8)" in run.stderr, run.stderr


def test_channels_last_images_for_the_cnn_say_the_layout_and_how_to_transpose(cli, tmp_path, npRng):
    with h5py.File(tmp_path / "rgb.h5", "w") as f:
        f["data"] = npRng.random((40, 32, 32, 3), np.float32)
        f["labels"] = np.arange(40) % 2
    run = cli("train", "--data", "rgb.h5", "--epochs", "1", "--curve", "none")
    assert run.returncode == 1
    assert "(N, C, H, W); the samples are (32, 32, 3), which looks channels last (N, H, W, C)" in run.stderr, run.stderr
    assert "numpy.transpose(images, (0, 3, 1, 2))" in run.stderr and "--channels-first" in run.stderr


def test_shuffled_data_with_every_class_in_each_split_trains_without_warnings(cli, digitsFile):
    run = cli("train", "--data", digitsFile(), "--model", "mlp", "--epochs", "1", "--curve", "none")
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stdout
