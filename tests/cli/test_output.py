"""Output for a log file: no progress-bar redraws off a terminal, one line per epoch, and where things went."""
import io

import numpy as np

from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.handlers.callbacks import ProgressBar
from macrobatch.handlers.fit import Fit
from macrobatch.models import mlp
from macrobatch.optimizers.sgd import SGD


def test_train_into_a_log_file_writes_one_line_per_epoch_and_where_the_outputs_went(cli, digitsFile, tmp_path):
    run = cli("train", "--data", digitsFile(), "--model", "mlp", "--epochs", "3", "--csv", "log/run.csv",
              "--checkpoints", "ck", "--out", "out/m.h5")
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stdout + run.stderr and "sample/s" not in run.stderr  # no bar redraws
    assert [line.split()[1] for line in run.stdout.splitlines() if line.startswith("epoch")] == ["1/3", "2/3", "3/3"]
    last = run.stdout.splitlines()[-4:]
    assert last[0] == "saved the model: out/m.h5"
    assert last[1] == "saved the training curve: out/curve.png" and (tmp_path / "out" / "curve.png").exists()
    assert last[2:] == ["saved the per-epoch log: log/run.csv", "saved the checkpoints: ck"]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_is_drawn_on_a_terminal_only(npRng):
    x = npRng.standard_normal((200, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        net = mlp(6, 2, hidden=(8,))
        optimizer = SGD(learnRate=0.1)
        optimizer.setupOn(net)
        Fit(net, CrossEntropy(), optimizer, batchsize=20, macroBatchSize=100,
            callbacks=[ProgressBar(file=stream)]).run(x, y, epochs=2)
        text = stream.getvalue()
        assert ("\r" in text) == drawn and text.count("epoch   ") == 2, text
