"""--precision: train in float16 or bfloat16 mixed precision from the command line; the saved model holds the
float32 master weights, and --resume keeps the precision a run was started with."""
import re

import h5py
import numpy as np
import pytest

from macrobatch.engine.backend import isCuda
from macrobatch.engine.dtype import precisionDtype
from macrobatch.modules.module import loadModel

tiny = ["--model", "mlp", "--batchsize", "50", "--macrobatch", "500", "--seed", "3", "--curve", "none"]


def modelArrays(path):
    """Every array of a saved model file, by its path in the file."""
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, node: arrays.update({name: node[()]}) if isinstance(node, h5py.Dataset) else None)
    return arrays


@pytest.mark.parametrize("precision", ["float32", "float16", "bfloat16"])
def test_each_precision_trains_and_saves_the_float32_master_weights(cli, digitsFile, tmp_path, precision):
    run = cli("train", "--data", digitsFile(), *tiny, "--epochs", "2", "--precision", precision, "--out", "m.h5")
    if precision == "bfloat16" and isCuda:
        assert run.returncode == 1 and "bfloat16 runs on the NumPy backend only" in run.stderr, run.stderr
        assert not (tmp_path / "m.h5").exists()
        return
    assert run.returncode == 0, run.stderr
    assert ("mixed precision" in run.stdout) == (precision != "float32")
    assert ("float16 loss scaling: 0 of 40 steps skipped" in run.stdout) == (precision == "float16"), run.stdout
    assert float(re.search(r"validation accuracy (\S+)", run.stdout).group(1)) > 0.85, run.stdout
    model = loadModel(tmp_path / "m.h5")
    assert model.dtype == np.float32
    saved = modelArrays(tmp_path / "m.h5")
    assert {ary.dtype for ary in saved.values()} == {np.dtype(np.float32)}
    narrow = precisionDtype(precision, "test")
    for name, ary in saved.items():  # the masters hold values the 16-bit copy cannot (a file stores bfloat16 widened)
        assert (ary.astype(narrow).astype(np.float32) != ary).any() == (precision != "float32"), name


def test_a_resumed_float16_run_keeps_its_precision_and_equals_a_straight_run(cli, digitsFile, tmp_path, readCsvRows):
    data = digitsFile()
    options = ["--data", data, *tiny, "--precision", "float16"]
    straight = cli("train", *options, "--epochs", "2", "--csv", "a.csv", "--out", "a.h5")
    assert straight.returncode == 0, straight.stderr
    first = cli("train", *options, "--epochs", "1", "--csv", "b.csv", "--out", "b.h5", "--checkpoints", "ck")
    assert first.returncode == 0, first.stderr
    other = cli("train", "--resume", "--checkpoints", "ck", "--epochs", "2", "--precision", "bfloat16")
    assert other.returncode == 1, other.stderr
    assert "--precision float16" in other.stderr and "--precision bfloat16" in other.stderr, other.stderr
    resumed = cli("train", "--resume", "--checkpoints", "ck", "--epochs", "2")  # no --precision: the run's
    assert resumed.returncode == 0, resumed.stderr
    assert "float16 mixed precision" in resumed.stdout and "0 of 40 steps skipped" in resumed.stdout, resumed.stdout
    assert readCsvRows(tmp_path / "a.csv") == readCsvRows(tmp_path / "b.csv")
    straightArrays, resumedArrays = modelArrays(tmp_path / "a.h5"), modelArrays(tmp_path / "b.h5")
    assert straightArrays.keys() == resumedArrays.keys()
    for name, ary in straightArrays.items():
        np.testing.assert_array_equal(resumedArrays[name], ary, err_msg=name)


def test_an_unknown_precision_is_refused_by_the_parser(cli):
    run = cli("train", "--precision", "float64")
    assert run.returncode == 2 and "--precision: invalid choice: 'float64'" in run.stderr, run.stderr


def test_train_help_explains_the_precisions(cli):
    text = " ".join(cli("train", "--help").stdout.split())
    for part in ("--precision {float32,float16,bfloat16}", "dynamic loss scaling", "needs ml_dtypes",
                 "final accuracy is measured in float32", "(default: float32)"):
        assert part in text, part
