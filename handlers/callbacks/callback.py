"""Callback: hooks into a Fit at the start and end of training, of every epoch, macrobatch and batch,
and on Ctrl-C."""


class Callback:
    """Override any of the hooks; each receives the running Fit, which exposes the model (``mod``), the
    ``trainer`` and ``validator``, the ``optimizer``, ``history``, ``epoch`` (epochs completed), ``epochs``
    (the epoch count run() was asked for) and
    ``stopTraining`` (set it to end training after the current epoch). Callbacks that hold state
    across epochs implement ``getState``/``setState`` so checkpoints resume them too."""

    def onTrainBegin(self, fit):
        pass

    def onEpochBegin(self, fit):
        pass

    def onBatchEnd(self, fit):
        pass

    def onMacroBatchEnd(self, fit):
        pass

    def onEpochEnd(self, fit, logs):
        """logs: this epoch's figures (loss, accuracy, val_loss, ..., learnRate, time)."""

    def onTrainEnd(self, fit):
        pass

    def onInterrupt(self, fit):
        """Ctrl-C stopped run() after a batch (``fit.epoch``: the epochs completed); KeyboardInterrupt is
        raised again once every callback has run this, instead of onTrainEnd."""

    def getState(self):
        return {}

    def setState(self, state):
        pass
