"""ModelCheckpoint: resumable checkpoints every few epochs, the last few kept, and the best model."""
import os
import re

from ...engine.serialize import checkWritable
from .callback import Callback
from .monitor import Monitor


class ModelCheckpoint(Callback):
    """Writes into folder, atomically:

    * ``epoch-NNNN.h5`` every ``every`` epochs: a full checkpoint (``Fit.resume`` continues from it
      exactly);
    * ``epoch-NNNN-mbMMMMMM.h5`` every ``everyMacroBatches`` macrobatches inside an epoch, when set: a
      full checkpoint after NNNN epochs and MMMMMM macrobatches of the next, so an interrupted long
      epoch resumes, exactly, from its last such point instead of from its start;
    * ``best.h5`` with monitor set: the model file (``loadModel`` rebuilds it) of the best epoch so far.

    Of the full checkpoints, the newest ``keepLast`` are kept (None keeps all).
    """

    def __init__(self, folder, every=1, keepLast=3, monitor=None, mode="min", everyMacroBatches=None):
        if every < 1 or (keepLast is not None and keepLast < 1) or (everyMacroBatches is not None
                                                                    and everyMacroBatches < 1):
            raise ValueError(f"every, keepLast and everyMacroBatches must be at least 1, got every={every}, "
                             f"keepLast={keepLast}, everyMacroBatches={everyMacroBatches}")
        self.folder, self.every, self.keepLast = folder, every, keepLast
        self.everyMacroBatches = everyMacroBatches
        self.watch = None if monitor is None else Monitor(monitor, mode)

    def onTrainBegin(self, fit):
        checkWritable(self.folder, "checkpoint folder")
        os.makedirs(self.folder, exist_ok=True)

    def onMacroBatchEnd(self, fit):
        every = self.everyMacroBatches
        if every is not None and fit.position % every == 0 and fit.position < fit.trainer.totalMacroBatches:
            self.save(fit, f"epoch-{fit.epoch:04d}-mb{fit.position:06d}.h5")

    def onEpochEnd(self, fit, logs):
        if fit.epoch % self.every == 0:
            self.save(fit, f"epoch-{fit.epoch:04d}.h5")
        if self.watch is not None and self.watch.improved(logs):
            with fit.optimizer.masterWeights():
                fit.mod.save(os.path.join(self.folder, "best.h5"))

    def save(self, fit, name):
        fit.saveCheckpoint(os.path.join(self.folder, name))
        if self.keepLast is not None:
            for old in checkpoints(self.folder)[:-self.keepLast]:
                os.unlink(old)

    def getState(self):
        return {} if self.watch is None else {"best": self.watch.best}

    def setState(self, state):
        if self.watch is not None:
            self.watch.best = state.get("best")


_name = re.compile(r"epoch-(\d+)(?:-mb(\d+))?\.h5")


def checkpoints(folder):
    """The full checkpoints ModelCheckpoint wrote into folder, oldest first."""
    paths = [os.path.join(folder, name) for name in os.listdir(folder) if _name.fullmatch(name)]
    return sorted(paths, key=checkpointPosition)


def checkpointPosition(path):
    """(epochs completed, macrobatches of the next epoch done) of a checkpoint named by ModelCheckpoint."""
    epoch, macroBatches = _name.fullmatch(os.path.basename(path)).groups()
    return int(epoch), int(macroBatches or 0)


def latestCheckpoint(folder):
    """The newest full checkpoint in folder, or None."""
    found = checkpoints(folder) if os.path.isdir(folder) else []
    return found[-1] if found else None
