"""CSVLogger: one row of figures per epoch, appended and flushed as each epoch ends."""
import csv
import os

from ...engine.serialize import checkWritable
from .callback import Callback


class CSVLogger(Callback):
    """Writes path anew when training starts from epoch 0. On resume it keeps the header and the rows
    of the epochs the checkpoint holds, dropping rows of later epochs (written before an interrupt or
    crash and redone now), and appends."""

    def __init__(self, path):
        self.path = path
        self.columns = None

    def onTrainBegin(self, fit):
        self.columns = None
        folder = os.path.dirname(os.path.abspath(self.path))
        checkWritable(folder, "CSV folder")
        os.makedirs(folder, exist_ok=True)
        if fit.epoch == 0 or not os.path.exists(self.path):
            open(self.path, "w").close()
            return
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        self.columns = rows[0]
        epoch = self.columns.index("epoch") if "epoch" in self.columns else None
        kept = [row for row in rows[1:] if epoch is None or int(row[epoch]) <= fit.epoch]
        if len(kept) < len(rows) - 1:
            tmp = f"{self.path}.tmp"
            with open(tmp, "w", newline="") as f:
                csv.writer(f).writerows([self.columns] + kept)
            os.replace(tmp, self.path)

    def onEpochEnd(self, fit, logs):
        newFile = self.columns is None
        if newFile:
            self.columns = list(logs)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if newFile:
                writer.writeheader()
            writer.writerow(logs)
