"""macrobatch train --dp-clip: DP-SGD from the command line, epsilon per epoch and at the end, --dp-epsilon solving
the noise, a resumed private run continuing epsilon exactly, and the refusals before any data is read."""
import math

import pytest

from macrobatch.privacy.accountant import epsilon, noiseMultiplierFor

# 600 training samples in macrobatches of 300, batches of 50: 12 Poisson steps per epoch at rate 50 / 300
DP = ["--model", "mlp", "--batchsize", "50", "--macrobatch", "300", "--optimizer", "sgd", "--lr", "0.1",
      "--curve", "none", "--no-progress", "--dp-clip", "1.0"]


def finalEpsilon(stdout):
    line = next(line for line in stdout.splitlines() if line.startswith("privacy: epsilon"))
    return float(line.split()[2])


def test_dp_noise_trains_and_reports_epsilon(cli, digitsFile, tmp_path):
    data = digitsFile(train=600, val=100)
    run = cli("train", "--data", data, *DP, "--dp-noise", "1.2", "--epochs", "2", "--csv", "log.csv", "--out", "m.h5")
    assert run.returncode == 0, run.stderr
    expected = epsilon(2 * 12, 50 / 300, 1.2, 1e-5)
    assert math.isclose(finalEpsilon(run.stdout), expected, rel_tol=1e-3), run.stdout
    assert "after 24 steps" in run.stdout and "epsilon" in run.stdout.splitlines()[1]  # the epoch line too
    header, *rows = (tmp_path / "log.csv").read_text().splitlines()
    column = header.split(",").index("epsilon")
    assert math.isclose(float(rows[-1].split(",")[column]), expected, rel_tol=1e-9)
    accuracy = float(run.stdout.split("validation accuracy ")[1].split()[0])
    assert accuracy > 0.3  # it learns (10 classes: chance is 0.1)


def test_dp_epsilon_solves_the_noise_for_the_planned_steps(cli, digitsFile):
    data = digitsFile(train=600, val=0)
    run = cli("train", "--data", data, *DP, "--dp-epsilon", "3", "--dp-delta", "1e-4", "--epochs", "2",
              "--out", "m.h5")
    assert run.returncode == 0, run.stderr
    sigma = noiseMultiplierFor(3.0, 24, 50 / 300, 1e-4)
    assert f"noise multiplier {sigma:.4g}" in run.stdout, run.stdout
    assert 3.0 - 0.011 <= finalEpsilon(run.stdout) <= 3.0


def test_a_resumed_private_run_continues_epsilon_exactly(cli, digitsFile, readCsvRows, tmp_path):
    data = digitsFile(train=600, val=100)
    options = ["--data", data, *DP, "--dp-epsilon", "4", "--seed", "3"]
    straight = cli("train", *options, "--epochs", "2", "--csv", "a.csv", "--out", "a.h5")
    assert straight.returncode == 0, straight.stderr
    first = cli("train", *options, "--epochs", "1", "--csv", "b.csv", "--out", "b.h5", "--checkpoints", "ck")
    assert first.returncode == 0, first.stderr
    resumed = cli("train", "--resume", "--checkpoints", "ck", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    # the noise solved for 1 planned epoch is kept (recorded), not solved again for 2
    assert "noise multiplier" not in resumed.stdout.split("resumed from")[1].split("privacy:")[0]
    assert finalEpsilon(resumed.stdout) > finalEpsilon(first.stdout)
    sigma = noiseMultiplierFor(4.0, 12, 50 / 300, 1e-5)
    assert math.isclose(finalEpsilon(resumed.stdout), epsilon(24, 50 / 300, sigma, 1e-5), rel_tol=1e-3)
    b = readCsvRows(tmp_path / "b.csv")
    assert len(b) == 3 and "epsilon" in b[0]


def test_refusals_before_any_data_is_read(cli):
    cases = [(["--dp-clip", "1", "--dp-noise", "1"], "the cnn model has BatchNorm"),
             (["--model", "mlp", "--dp-noise", "1"], "need --dp-clip C"),
             (["--model", "mlp", "--dp-clip", "1"], "--dp-noise SIGMA"),
             (["--model", "mlp", "--dp-clip", "1", "--dp-epsilon", "2", "--macrobatch", "auto"], "not auto")]
    for options, message in cases:
        run = cli("train", "--data", "missing.h5", *options)
        assert run.returncode == 1 and message in run.stderr and "missing.h5" not in run.stderr, (options, run.stderr)
    both = cli("train", "--model", "mlp", "--dp-clip", "1", "--dp-noise", "1", "--dp-epsilon", "2")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_dp_epsilon_is_refused_in_a_data_parallel_job():
    """Under mpiexec the rate and steps depend on the shards: --dp-epsilon is refused there, --dp-noise is not."""
    import argparse

    from macrobatch.cli.train import checkPrivacy
    from macrobatch.engine.errors import MacrobatchError

    class TwoProcesses:
        size, rank = 2, 0
    args = argparse.Namespace(dp_clip=1.0, dp_noise=None, dp_epsilon=3.0, model="mlp", macrobatch=1000)
    checkPrivacy(args)
    with pytest.raises(MacrobatchError, match="data-parallel job"):
        checkPrivacy(args, TwoProcesses())
    checkPrivacy(argparse.Namespace(**{**vars(args), "dp_noise": 1.0, "dp_epsilon": None}), TwoProcesses())
