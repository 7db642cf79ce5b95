"""EarlyStopping: stop when a monitored figure stops improving, optionally restoring the best weights."""
from .callback import Callback
from .monitor import Monitor


class EarlyStopping(Callback):
    """Stops training after patience epochs without improvement of monitor (see Monitor); with
    restoreBest the weights of the best epoch are put back when training ends."""

    def __init__(self, monitor="val_loss", patience=5, mode="min", minDelta=0.0, restoreBest=True):
        self.watch = Monitor(monitor, mode, minDelta)
        self.patience, self.restoreBest = patience, restoreBest
        self.wait, self.bestEpoch, self.bestWeights = 0, None, None

    def onEpochEnd(self, fit, logs):
        if self.watch.improved(logs):
            self.wait, self.bestEpoch = 0, logs["epoch"]
            if self.restoreBest:
                self.bestWeights = fit.modelState()
        else:
            self.wait += 1
            fit.stopTraining = self.wait >= self.patience

    def onTrainEnd(self, fit):
        if self.restoreBest and self.bestWeights is not None and fit.stopTraining:
            fit.setModelState(self.bestWeights, source=f"best weights of epoch {self.bestEpoch}")

    def getState(self):
        state = {"best": self.watch.best, "wait": self.wait, "bestEpoch": self.bestEpoch}
        if self.bestWeights is not None:
            state["bestWeights"] = {key.replace("/", ":"): ary for key, ary in self.bestWeights.items()}
        return state

    def setState(self, state):
        self.watch.best, self.wait, self.bestEpoch = state.get("best"), state.get("wait", 0), state.get("bestEpoch")
        weights = state.get("bestWeights")
        self.bestWeights = None if weights is None else {key.replace(":", "/"): ary for key, ary in weights.items()}
