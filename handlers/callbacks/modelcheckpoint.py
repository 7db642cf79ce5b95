"""ModelCheckpoint: resumable checkpoints every few epochs, the last few kept, and the best model."""
import os
import re

from ...engine.serialize import checkWritable
from .callback import Callback
from .monitor import Monitor


class ModelCheckpoint(Callback):
    """Writes into folder, atomically:

    * ``epoch-NNNN.h5`` every ``every`` epochs: a full checkpoint (``Fit.resume`` continues from it
      exactly), keeping the newest ``keepLast`` (None keeps all);
    * ``best.h5`` with monitor set: the model file (``loadModel`` rebuilds it) of the best epoch so far.
    """

    def __init__(self, folder, every=1, keepLast=3, monitor=None, mode="min"):
        if every < 1 or (keepLast is not None and keepLast < 1):
            raise ValueError(f"every and keepLast must be at least 1, got every={every}, keepLast={keepLast}")
        self.folder, self.every, self.keepLast = folder, every, keepLast
        self.watch = None if monitor is None else Monitor(monitor, mode)

    def onTrainBegin(self, fit):
        checkWritable(self.folder, "checkpoint folder")
        os.makedirs(self.folder, exist_ok=True)

    def onEpochEnd(self, fit, logs):
        if fit.epoch % self.every == 0:
            fit.saveCheckpoint(os.path.join(self.folder, f"epoch-{fit.epoch:04d}.h5"))
            if self.keepLast is not None:
                for old in checkpoints(self.folder)[:-self.keepLast]:
                    os.unlink(old)
        if self.watch is not None and self.watch.improved(logs):
            fit.mod.save(os.path.join(self.folder, "best.h5"))

    def getState(self):
        return {} if self.watch is None else {"best": self.watch.best}

    def setState(self, state):
        if self.watch is not None:
            self.watch.best = state.get("best")


def checkpoints(folder):
    """The full checkpoints ModelCheckpoint wrote into folder, oldest first."""
    names = sorted(name for name in os.listdir(folder) if re.fullmatch(r"epoch-\d+\.h5", name))
    return [os.path.join(folder, name) for name in names]


def checkpointEpoch(path):
    """The number of completed epochs a checkpoint named by ModelCheckpoint holds."""
    return int(re.fullmatch(r"epoch-(\d+)\.h5", os.path.basename(path)).group(1))


def latestCheckpoint(folder):
    """The newest full checkpoint in folder, or None."""
    found = checkpoints(folder) if os.path.isdir(folder) else []
    return found[-1] if found else None
