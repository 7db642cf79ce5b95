"""Calculator: a model's outputs over data, back on the host in input order."""
import numpy

from ..engine.backend import toHost, xp
from .handler import Handler


class Calculator(Handler):
    """Runs mod in eval mode. Outputs of a macrobatch are gathered on the device and copied to the
    host once per macrobatch, never per batch. checkFinite: as for Handler (NaN or Inf in the data
    stops the call, naming the samples; pass False to compute outputs for such data anyway)."""

    def __init__(self, mod, onBatchFinish=None, batchsize=128, checkFinite=True):
        super().__init__(mod, onBatchFinish, batchsize, checkFinite)
        self.results = None
        self.deviceOut = None

    def calcFromHost(self, data, macroBatchSize=10000, onMacroBatchFinish=None):
        """Outputs for host data (a NumPy array or h5py Dataset), as one NumPy array."""
        self.begin()
        self.handleFromHost(data, None, macroBatchSize, onMacroBatchFinish, random=False)
        return self.results

    def calc(self, data):
        """Outputs for device-resident data, as one NumPy array on the host."""
        self.begin()
        self.handle(data, None, random=False)
        return self.results

    def begin(self):
        self.mod.evalMode()
        self.results = None

    def handleMacroBatch(self, index, offset, data, target=None, random=True):
        self.deviceOut = None
        super().handleMacroBatch(index, offset, data, target, random)
        self.results[offset:offset + data.shape[0]] = toHost(self.deviceOut)

    def handleBatch(self, batch, idx, state):
        out = self.mod(batch[0])
        if self.deviceOut is None:  # sized by this macrobatch, so a short last one fits
            self.deviceOut = xp.empty((state["macroBatchSize"],) + out.shape[1:], dtype=out.dtype)
        if self.results is None:
            self.results = numpy.empty((state["totalSamples"],) + out.shape[1:], dtype=out.dtype)
        self.deviceOut[state["start"]:state["start"] + state["size"]] = out
