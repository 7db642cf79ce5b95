"""A class-sorted file: inspect and train say its labels come in long runs, and how to shuffle it once."""
import numpy as np


def test_inspect_and_train_warn_about_a_class_sorted_file_and_convert_shuffle_fixes_it(cli, digitsFile, digits,
                                                                                        tmp_path):
    images, labels = digits
    order = np.argsort(labels, kind="stable")
    data = digitsFile("sorted.h5", val=0, **{"data": images[order], "labels": labels[order]})
    inspect = cli("inspect", data)
    assert inspect.returncode == 0 and "warning: labels come in runs of one class (a sample's run: 180 samples on average" in \
        inspect.stdout, inspect.stdout
    train = cli("train", "--data", data, "--model", "mlp", "--epochs", "1", "--curve", "none")
    assert train.returncode == 0 and "warning: the training labels come in runs" in train.stdout, train.stderr
    assert "macrobatch convert FILE --shuffle" in train.stdout
    np.savez(tmp_path / "sorted.npz", data=images[order], labels=labels[order])
    assert cli("convert", "sorted.npz", "--shuffle", "--out", "mixed.h5").returncode == 0
    assert "warning" not in cli("inspect", "mixed.h5").stdout
