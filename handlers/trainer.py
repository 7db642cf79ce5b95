"""Trainer: forward, cost, backward and optimizer update on every batch."""
import math

from ..engine.backend import isCuda, toHost
from ..engine.errors import NonFiniteError
from .handler import Handler


class Trainer(Handler):
    """Trains mod on cost with optimizer (already set up on mod with ``optimizer.setupOn(mod)``).

    Each call resets the cost's accumulated error and switches mod to train mode; afterwards
    ``cost.getError()`` is the mean training error over the call.

    A NaN or Inf loss stops training with NonFiniteError before the bad step is applied. On the CPU
    every batch is checked (the loss is already a host number); on the GPU the accumulated error is
    checked once per macrobatch, so the batch loop never waits for the device.
    """

    def __init__(self, mod, cost, optimizer, onBatchFinish=None, batchsize=128):
        super().__init__(mod, onBatchFinish, batchsize)
        self.cost, self.optimizer = cost, optimizer

    def trainFromHost(self, data, target, macroBatchSize=10000, onMacroBatchFinish=None, random=True):
        """Train one pass over host data (NumPy arrays or h5py Datasets) in macrobatches."""
        self.begin()
        self.handleFromHost(data, target, macroBatchSize, onMacroBatchFinish, random)

    def train(self, data, target, random=True):
        """Train one pass over device-resident data."""
        self.begin()
        self.handle(data, target, random)

    def begin(self):
        self.cost.resetAccumulator()
        self.mod.trainMode()

    def handleBatch(self, batch, idx, state):
        data, target = batch
        error, grad = self.cost(self.mod(data), target)
        if not isCuda:
            self.checkFinite(float(error), f"batch {idx} (macrobatch {state['macroBatch']}, samples "
                                           f"{state['start']}..{state['start'] + state['size'] - 1} of it)")
        self.optimizer.zeroGradParams()
        self.mod.backward(grad, updGrad=False)
        self.optimizer.update()

    def finishMacroBatch(self):
        if isCuda:
            self.checkFinite(float(toHost(self.cost.accumErr)), f"macrobatch {self.currMacroBatch}")

    def prepareTarget(self, target):
        return self.cost.prepareTarget(target)

    @staticmethod
    def checkFinite(error, where):
        if not math.isfinite(error):
            raise NonFiniteError(f"training loss became {error} at {where}; the step was not applied. "
                                 "Check the data for NaN/Inf and try a lower learning rate")
