"""TerminateOnNaN: stop cleanly when an epoch's figures are not finite (a NaN validation loss, say).

A NaN or Inf training loss already stops the Trainer itself, with an error naming the batch."""
import math

from .callback import Callback


class TerminateOnNaN(Callback):

    def __init__(self):
        self.reason = None

    def onEpochEnd(self, fit, logs):
        bad = [key for key, value in logs.items() if isinstance(value, float) and not math.isfinite(value)]
        if bad:
            self.reason = f"epoch {logs['epoch']}: {', '.join(f'{key}={logs[key]}' for key in bad)}"
            fit.stopTraining = True
