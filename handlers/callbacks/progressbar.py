"""ProgressBar: a tqdm bar per epoch with the running loss and samples/s, and a line per epoch."""
import sys
import time

from tqdm import tqdm

from .callback import Callback


class ProgressBar(Callback):
    """The running loss is read at most every refresh seconds and at each macrobatch end: reading it
    synchronises the GPU, so not on every batch. bar: "auto" draws the bar only when file (default:
    stderr) is a terminal, as a log file would get every redraw; True always, False never. The line per
    epoch is printed either way."""

    def __init__(self, refresh=0.5, bar="auto", file=None):
        stream = sys.stderr if file is None else file  # tqdm's own default
        self.refresh, self.file = refresh, file
        self.showBar = stream.isatty() if bar == "auto" else bool(bar)
        self.bar, self.shown = None, 0.0

    def onEpochBegin(self, fit):
        self.bar = None

    def onBatchEnd(self, fit):
        state = fit.trainer.state
        if not self.showBar:
            return
        if self.bar is None:
            self.bar = tqdm(total=state["totalSamples"], desc=f"epoch {fit.epoch + 1}/{fit.epochs}", unit="sample",
                            unit_scale=True, leave=False, dynamic_ncols=True, file=self.file)
        self.bar.update(state["size"])
        if time.perf_counter() - self.shown > self.refresh:
            self.showLoss(fit)

    def onMacroBatchEnd(self, fit):
        self.showLoss(fit)

    def showLoss(self, fit):
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{fit.trainer.cost.getError():.4f}")
            self.shown = time.perf_counter()

    def onInterrupt(self, fit):
        if self.bar is not None:
            self.bar.close()

    def onEpochEnd(self, fit, logs):
        if self.bar is not None:
            self.bar.close()
        figures = "  ".join(f"{key} {value:.4g}" for key, value in logs.items() if key not in ("epoch", "time"))
        tqdm.write(f"epoch {logs['epoch']:3d}/{fit.epochs}  {figures}  ({logs['time']:.2f}s)", file=self.file)
