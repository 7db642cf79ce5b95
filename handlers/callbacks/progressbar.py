"""ProgressBar: a tqdm bar per epoch with the running loss and samples/s, and a line per epoch."""
import time

from tqdm import tqdm

from .callback import Callback


class ProgressBar(Callback):
    """The running loss is read at most every refresh seconds and at each macrobatch end: reading it
    synchronises the GPU, so not on every batch. bar=False prints only the line per epoch."""

    def __init__(self, refresh=0.5, bar=True, file=None):
        self.refresh, self.showBar, self.file = refresh, bar, file
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
