"""macrobatch convert: .npy/.npz, CSV, image folders and IDX files into train's layout; train --val-split."""
import gzip
import struct

import h5py
import numpy as np
import pytest


def readAll(path):
    with h5py.File(path) as f:
        return {key: f[key][()] for key in f}, dict(f.attrs), {key: f[key].chunks for key in f}


def test_npz_shuffled_split_and_chunked_then_trained(cli, digits, tmp_path):
    images, labels = digits
    np.savez(tmp_path / "d.npz", x=images, y=labels)
    run = cli("convert", "d.npz", "--out", "d.h5", "--shuffle", "--val", "0.1", "--test", "0.2", "--chunk", "64")
    assert run.returncode == 0, run.stderr
    held, _, chunks = readAll(tmp_path / "d.h5")
    assert [len(held[k]) for k in ("data", "val_data", "test_data")] == [1258, 180, 359]
    assert chunks["data"] == (64, 1, 8, 8)
    order = np.random.default_rng(0).permutation(len(images))  # --seed 0's one shuffle, then the splits in turn
    np.testing.assert_array_equal(held["data"], images[order[:1258]])
    np.testing.assert_array_equal(held["test_labels"], labels[order[1438:]])
    train = cli("train", "--data", "d.h5", "--model", "mlp", "--epochs", "2", "--curve", "none")
    assert train.returncode == 0 and "test accuracy" in train.stdout, train.stderr


def test_npy_pair_with_channels_last_images_stored_channels_first(cli, tmp_path, npRng):
    images = npRng.random((30, 6, 5, 3), np.float32)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", np.arange(30) % 3)
    run = cli("convert", "x.npy", "y.npy", "--out", "c.h5", "--channels-first")
    assert run.returncode == 0 and "samples of (3, 6, 5)" in run.stdout, run.stdout + run.stderr
    held, _, _ = readAll(tmp_path / "c.h5")
    np.testing.assert_array_equal(held["data"], images.transpose(0, 3, 1, 2))


def test_csv_with_a_named_label_column_of_class_names(cli, tmp_path):
    (tmp_path / "t.csv").write_text("a,species,b\n1.5,dog,2\n0.5,cat,-1\n3,dog,0\n")
    assert "name the label column" in cli("convert", "t.csv", "--out", "t.h5").stderr
    assert "no column 'kind'" in cli("convert", "t.csv", "--out", "t.h5", "--label-column", "kind").stderr
    run = cli("convert", "t.csv", "--out", "t.h5", "--label-column", "species")
    assert run.returncode == 0, run.stderr
    held, attrs, _ = readAll(tmp_path / "t.h5")
    np.testing.assert_array_equal(held["data"], np.array([[1.5, 2], [0.5, -1], [3, 0]], np.float32))
    np.testing.assert_array_equal(held["labels"], [1, 0, 1])
    assert list(attrs["classNames"]) == ["cat", "dog"]


def test_idx_files_as_mnist_ships_them(cli, tmp_path, npRng):
    images = npRng.integers(0, 256, (12, 7, 9), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 4
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 0x08, 3, 12, 7, 9) + images.tobytes())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBI", 0, 0, 0x08, 1, 12) + labels.tobytes())
    run = cli("convert", "train-labels-idx1-ubyte", "train-images-idx3-ubyte.gz", "--out", "m.h5")
    assert run.returncode == 0, run.stderr
    held, _, _ = readAll(tmp_path / "m.h5")
    np.testing.assert_array_equal(held["data"], images[:, None])
    np.testing.assert_array_equal(held["labels"], labels)


def test_folder_of_images_per_class(cli, tmp_path, npRng):
    Image = pytest.importorskip("PIL.Image", reason="image folders need Pillow (macrobatch[images])")
    pixels = {}
    for name in ("cat", "dog"):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(3):
            pixels[name, i] = npRng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
            Image.fromarray(pixels[name, i]).save(tmp_path / "pics" / name / f"{i}.png")
    run = cli("convert", "pics", "--out", "p.h5")
    assert run.returncode == 0, run.stderr
    held, attrs, _ = readAll(tmp_path / "p.h5")
    assert held["data"].shape == (6, 3, 5, 4) and list(attrs["classNames"]) == ["cat", "dog"]
    np.testing.assert_array_equal(held["labels"], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(held["data"][4], pixels["dog", 1].transpose(2, 0, 1))


def test_train_val_split_takes_the_files_tail(cli, digitsFile):
    data = digitsFile(train=1000, val=0)
    run = cli("train", "--data", data, "--model", "mlp", "--epochs", "1", "--val-split", "0.1", "--curve", "none")
    assert run.returncode == 0, run.stderr
    assert "(900 samples of (1, 8, 8)" in run.stdout and "val_loss" in run.stdout
    assert "validation accuracy" in run.stdout
    twice = cli("train", "--data", digitsFile("v.h5"), "--val-split", "0.1", "--epochs", "1")
    assert twice.returncode == 1 and "already holds 'val_data'; drop --val-split" in twice.stderr
