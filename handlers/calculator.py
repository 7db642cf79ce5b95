"""Calculator: a model's outputs over data, back on the host in input order."""
import numpy

from ..engine.backend import toHost, xp
from ..modules.module import withoutActivations
from .handler import Handler


class Calculator(Handler):
    """Runs mod in eval mode. Outputs of a macrobatch are gathered on the device and copied to the
    host once per macrobatch (and per output), never per batch. A model with several outputs (a Graph
    with several output nodes) gives a list of NumPy arrays, one per output, in the model's order.
    checkFinite: as for Handler (NaN or Inf in the data stops the call, naming the samples; pass False
    to compute outputs for such data anyway)."""

    def __init__(self, mod, onBatchFinish=None, batchsize=128, checkFinite=True):
        super().__init__(mod, onBatchFinish, batchsize, checkFinite)
        self.results = None
        self.deviceOut = None  # the macrobatch's outputs on the device: a list, one array per output
        self.hostOut = None  # the call's outputs on the host: a list, one array per output

    def calcFromHost(self, data, macroBatchSize=10000, onMacroBatchFinish=None):
        """Outputs for host data (a NumPy array or h5py Dataset), as one NumPy array (a list for a model
        with several outputs)."""
        self.begin()
        self.handleFromHost(data, None, macroBatchSize, onMacroBatchFinish, random=False)
        return self.results

    def calc(self, data):
        """Outputs for device-resident data, as one NumPy array on the host (a list for a model with
        several outputs)."""
        self.begin()
        self.handle(data, None, random=False)
        return self.results

    def begin(self):
        self.mod.evalMode()
        self.results = self.hostOut = None

    def handleMacroBatch(self, index, offset, data, target=None, random=True):
        self.deviceOut = None
        super().handleMacroBatch(index, offset, data, target, random)
        for host, device in zip(self.hostOut, self.deviceOut):
            host[offset:offset + data.shape[0]] = toHost(device)

    def handleBatch(self, batch, idx, state):
        with withoutActivations():  # inference: each layer's output is freed once the next has used it
            out = self.mod(batch[0])
        outs = out if isinstance(out, (list, tuple)) else [out]
        if self.deviceOut is None:  # sized by this macrobatch, so a short last one fits
            self.deviceOut = [xp.empty((state["macroBatchSize"],) + o.shape[1:], dtype=o.dtype) for o in outs]
        if self.hostOut is None:
            self.hostOut = [numpy.empty((state["totalSamples"],) + o.shape[1:], dtype=o.dtype) for o in outs]
            self.results = self.hostOut if isinstance(out, (list, tuple)) else self.hostOut[0]
        for device, o in zip(self.deviceOut, outs):
            device[state["start"]:state["start"] + state["size"]] = o
