"""--resume continues the same run: every option comes from the checkpoint, contradictions are refused."""


def test_resume_takes_every_option_from_the_checkpoint_and_equals_a_straight_run(cli, digitsFile, tmp_path,
                                                                                   readCsvRows):
    data = digitsFile()
    options = ["--data", data, "--model", "mlp", "--batchsize", "50", "--macrobatch", "300", "--optimizer",
               "momentum", "--lr", "0.05", "--clip-norm", "5", "--accumulate", "2", "--schedule", "plateau",
               "--patience", "3", "--seed", "7", "--curve", "none"]
    straight = cli("train", *options, "--epochs", "3", "--csv", "a.csv", "--out", "a.h5")
    assert straight.returncode == 0, straight.stderr
    first = cli("train", *options, "--epochs", "2", "--csv", "b.csv", "--out", "b.h5", "--checkpoints", "ck")
    assert first.returncode == 0, first.stderr
    resumed = cli("train", "--resume", "--checkpoints", "ck", "--epochs", "3")
    assert resumed.returncode == 0, resumed.stderr
    assert "with the run's options" in resumed.stdout
    assert "--epochs 3 instead of the checkpoint's 2" in resumed.stdout
    assert "batch 50" in resumed.stdout  # not the default 32
    assert readCsvRows(tmp_path / "a.csv") == readCsvRows(tmp_path / "b.csv")  # the CSV path came back too
    assert f"saved the model: {tmp_path / 'b.h5'}" in resumed.stdout  # and --out


def test_resume_refuses_a_contradicting_option_naming_both_values(cli, digitsFile):
    data = digitsFile()
    assert cli("train", "--data", data, "--model", "mlp", "--epochs", "1", "--batchsize", "50", "--curve", "none",
               "--out", "m.h5", "--checkpoints", "ck").returncode == 0
    again = cli("train", "--resume", "--checkpoints", "ck", "--batchsize", "32", "--epochs", "2")
    assert again.returncode == 1
    assert "--batchsize 50" in again.stderr and "--batchsize 32" in again.stderr, again.stderr
    same = cli("train", "--resume", "--checkpoints", "ck", "--batchsize", "50", "--model", "mlp", "--epochs", "2")
    assert same.returncode == 0, same.stderr  # repeating the run's own options is fine


def test_more_epochs_are_refused_where_the_schedule_is_laid_out_over_them(cli, digitsFile):
    data = digitsFile()
    assert cli("train", "--data", data, "--model", "mlp", "--epochs", "1", "--schedule", "cosine", "--curve", "none",
               "--out", "m.h5", "--checkpoints", "ck").returncode == 0
    again = cli("train", "--resume", "--checkpoints", "ck", "--epochs", "2")
    assert again.returncode == 1 and "--schedule cosine is laid out over them" in again.stderr, again.stderr


def test_resume_without_checkpoints_is_refused_before_any_data_is_read(cli):
    run = cli("train", "--resume", "--data", "missing.h5")
    assert run.returncode == 1
    assert "--resume needs --checkpoints DIR" in run.stderr and "missing.h5" not in run.stderr, run.stderr
    empty = cli("train", "--resume", "--checkpoints", "nothing", "--data", "missing.h5")
    assert empty.returncode == 1 and "--resume: no checkpoint in 'nothing'" in empty.stderr, empty.stderr
