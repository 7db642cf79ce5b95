"""CSVLogger: one row of figures per epoch, appended and flushed as each epoch ends."""
import csv
import os

from .callback import Callback


class CSVLogger(Callback):
    """Writes path anew when training starts from epoch 0 and appends when it resumes later."""

    def __init__(self, path):
        self.path = path
        self.columns = None

    def onTrainBegin(self, fit):
        self.columns = None
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if fit.epoch == 0:
            open(self.path, "w").close()
        else:
            with open(self.path, newline="") as f:
                self.columns = next(csv.reader(f), None)

    def onEpochEnd(self, fit, logs):
        newFile = self.columns is None
        if newFile:
            self.columns = list(logs)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if newFile:
                writer.writeheader()
            writer.writerow(logs)
