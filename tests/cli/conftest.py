"""The command line as a user runs it: `python -m macrobatch` in a subprocess, on small files made here."""
import subprocess
import sys

import h5py
import numpy as np
import pytest

from macrobatch.datasets import loadDigits


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """run(*args) -> CompletedProcess of `python -m macrobatch args`, in tmp_path, output captured (not a
    terminal, as in a log file)."""
    monkeypatch.setenv("MACROBATCH_CACHE", str(tmp_path / "cache"))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "macrobatch", *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
    return run


@pytest.fixture
def digitsFile(tmp_path):
    """write(name, train=1000, val=200, **extra) -> path of an HDF5 file of the digits (shuffled as
    shipped): data/labels, val_data/val_labels; extra datasets or None to leave one out."""
    images, labels = loadDigits()

    def write(name="digits.h5", train=1000, val=200, **extra):
        datasets = {"data": images[:train], "labels": labels[:train]}
        if val:
            datasets.update(val_data=images[train:train + val], val_labels=labels[train:train + val])
        datasets.update(extra)
        with h5py.File(tmp_path / name, "w") as f:
            for key, value in datasets.items():
                if value is not None:
                    f[key] = value
        return tmp_path / name
    return write


@pytest.fixture
def digits():
    return loadDigits()


def csvRows(path):
    """The CSV's rows without the time column (the only figure that differs between equal runs)."""
    lines = [line.split(",") for line in path.read_text().splitlines()]
    drop = lines[0].index("time")
    return [[v for i, v in enumerate(row) if i != drop] for row in lines]


@pytest.fixture
def readCsvRows():
    return csvRows


@pytest.fixture
def npRng():
    return np.random.default_rng(0)
