"""Validator: the cost (and the cost's metrics) of a model over data, in eval mode, without updates."""
from ..costs.multi import targetCount
from ..modules.module import withoutActivations
from .handler import Handler, checkOutputs


class Validator(Handler):
    """Evaluates mod on cost. Each call resets the accumulator, switches mod to eval mode and returns the
    mean error over the data; ``metrics`` then holds everything the cost reports (e.g. accuracy).

    metrics: optional metric objects (costs.metrics: Accuracy, ConfusionMatrix, ...), reset with the
    cost, updated with every batch's predictions and prepared targets, and merged into ``metrics``
    after the cost's entries (a metric's entry replaces the cost's entry of the same name).
    A model with several outputs is validated with costs.Multi on a list of target arrays, one per
    output; metric objects take one output, so they are refused there (Multi reports each cost's metrics).
    checkFinite: as for Handler (NaN or Inf in the data or targets stops the call, naming the samples).
    """

    def __init__(self, mod, cost, onBatchFinish=None, batchsize=128, metrics=None, checkFinite=True):
        super().__init__(mod, onBatchFinish, batchsize, checkFinite)
        self.cost = cost
        self.metricObjects = list(metrics or [])
        self.metrics = {}

    def validateFromHost(self, data, target, macroBatchSize=10000, onMacroBatchFinish=None):
        """Mean error over host data (NumPy arrays or h5py Datasets), read in macrobatches."""
        self.begin()
        self.handleFromHost(data, target, macroBatchSize, onMacroBatchFinish, random=False)
        return self.finish()

    def validate(self, data, target):
        """Mean error over device-resident data."""
        self.begin()
        self.handle(data, target, random=False)
        return self.finish()

    def checkTargetCount(self, target):
        super().checkTargetCount(target)
        if self.metricObjects and isinstance(target, (list, tuple)):
            raise ValueError(f"Validator: metric objects ({', '.join(type(m).__name__ for m in self.metricObjects)}) "
                             "score one output, not a list of targets; Multi reports each output's cost metrics")

    def begin(self):
        self.cost.resetAccumulator()
        for metric in self.metricObjects:
            metric.reset()
        self.mod.evalMode()

    def finish(self):
        self.metrics = self.cost.getMetrics()
        for metric in self.metricObjects:
            self.metrics.update(metric.compute())
        return self.metrics["error"]

    def handleBatch(self, batch, idx, state):
        data, target = batch
        with withoutActivations():  # no backward follows: keep no layer's input or output
            pred = checkOutputs(self.mod(data), target)
        self.cost.validate(pred, target)
        for metric in self.metricObjects:
            metric.update(pred, target)

    def prepareTarget(self, target):
        return self.cost.prepareTarget(target)

    @property
    def targetsTaken(self):
        return targetCount(self.cost)
