"""macrobatch train --dp-clip with --accumulate K: one Poisson logical batch of K * batchsize samples on average per
update, epsilon accounted at that rate for the updates taken, --dp-epsilon solving for them, the options recorded
and a resumed run continuing exactly."""
import math

from macrobatch.cli.runconfig import storedConfig
from macrobatch.handlers.callbacks import latestCheckpoint
from macrobatch.privacy.accountant import epsilon, noiseMultiplierFor

DP = ["--model", "mlp", "--batchsize", "50", "--optimizer", "sgd", "--lr", "0.1", "--curve", "none", "--no-progress",
      "--dp-clip", "1.0"]


def finalEpsilon(stdout):
    line = next(line for line in stdout.splitlines() if line.startswith("privacy: epsilon"))
    return float(line.split()[2])


def test_accumulated_dp_accounts_logical_steps_records_its_options_and_resumes_exactly(cli, digitsFile, readCsvRows,
                                                                                        tmp_path):
    # 600 samples in macrobatches of 300, logical batches of 2 * 50: 3 updates per macrobatch at rate 100 / 300
    options = ["--data", digitsFile(train=600, val=100), *DP, "--macrobatch", "300", "--accumulate", "2",
               "--dp-noise", "1.2", "--seed", "3"]
    straight = cli("train", *options, "--epochs", "2", "--csv", "a.csv", "--out", "a.h5")
    assert straight.returncode == 0, straight.stderr
    expected = epsilon(2 * 6, 100 / 300, 1.2, 1e-5)
    assert "after 12 steps" in straight.stdout and math.isclose(finalEpsilon(straight.stdout), expected, rel_tol=1e-3)
    first = cli("train", *options, "--epochs", "1", "--csv", "b.csv", "--out", "b.h5", "--checkpoints", "ck")
    assert first.returncode == 0, first.stderr
    stored = storedConfig(latestCheckpoint(tmp_path / "ck"))
    assert stored["accumulate"] == 2 and stored["dp_noise"] == 1.2 and stored["dp_clip"] == 1.0
    resumed = cli("train", "--resume", "--checkpoints", "ck", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "after 12 steps" in resumed.stdout and finalEpsilon(resumed.stdout) == finalEpsilon(straight.stdout)
    assert readCsvRows(tmp_path / "b.csv") == readCsvRows(tmp_path / "a.csv")


def test_dp_epsilon_solves_the_noise_for_the_logical_steps_and_rate(cli, digitsFile):
    # macrobatches of 250, 250, 100 and logical batches of 3 * 50: 2 + 2 + 1 updates an epoch at rate 150 / 250
    data = digitsFile(train=600, val=0)
    run = cli("train", "--data", data, *DP, "--macrobatch", "250", "--accumulate", "3", "--dp-epsilon", "3",
              "--dp-delta", "1e-4", "--epochs", "2", "--out", "m.h5")
    assert run.returncode == 0, run.stderr
    sigma = noiseMultiplierFor(3.0, 10, 150 / 250, 1e-4)
    assert f"noise multiplier {sigma:.4g}" in run.stdout and "after 10 steps" in run.stdout, run.stdout
    assert 3.0 - 0.011 <= finalEpsilon(run.stdout) <= 3.0
