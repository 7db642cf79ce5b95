"""Metric: a score accumulated over batches on the device and read on the host once per pass."""
import math

from ...engine.backend import isCuda, toDevice, toHost
from ...engine.errors import DtypeError, ModelFileError, ShapeError
from ..cost import Cost
from ..labelrange import LabelRange


class Metric:
    """An accumulator like the Cost's error: ``update(pred, target)`` adds one batch to device arrays
    without waiting for the device, ``compute()`` reads them once and returns a host dict, ``reset()``
    starts a new pass. A Validator given ``metrics=[...]`` resets them with its cost, updates them with
    every batch's predictions and the targets the cost prepared, and merges compute() into its
    ``metrics``.

    A subclass passes its zeroed device accumulators to ``__init__`` by name (``self.accums``) and
    implements ``checkShapes(pred, target)`` (raises on input it cannot take, returns the target to
    accumulate: checkLabels or checkLike), ``accumulate(pred, target)`` (adds the batch into
    self.accums and returns how many items it judged, a host int, summed into ``self.count``) and
    ``results(accums, count)`` (the reported dict, from host copies of the accumulators).
    """

    rejectTargets = Cost.rejectTargets

    def __init__(self, **accums):
        self.accums = accums
        self.count = 0
        self.labelRange = LabelRange(type(self).__name__)

    def reset(self):
        for ary in self.accums.values():
            ary.fill(0)
        self.count = 0
        self.labelRange.reset()

    def update(self, pred, target):
        self.count += self.accumulate(pred, self.checkShapes(pred, target))

    def compute(self):
        """Host dict of the scores over everything since the last reset (synchronises); raises LabelError
        instead if a label screened on the GPU was out of range (see checkLabels)."""
        self.labelRange.check()
        return self.results({name: toHost(ary) for name, ary in self.accums.items()}, self.count)

    def getState(self):
        return {"count": self.count, "accums": {name: toHost(ary).copy() for name, ary in self.accums.items()}}

    def setState(self, state):
        accums = state["accums"]
        if set(accums) != set(self.accums) or any(accums[k].shape != a.shape for k, a in self.accums.items()):
            raise ModelFileError(f"{type(self).__name__}.setState: the saved accumulators do not fit this metric")
        for name, ary in self.accums.items():
            ary[...] = toDevice(accums[name], ary.dtype)
        self.count = int(state["count"])

    def checkShapes(self, pred, target):
        raise NotImplementedError

    def accumulate(self, pred, target):
        raise NotImplementedError

    def results(self, accums, count):
        raise NotImplementedError

    def checkLabels(self, pred, target):
        """Classification input: logits (batch, classes) (checkClasses may refuse their number) and integer
        labels (batch,); returns the labels to accumulate. Labels out of range raise LabelError at once on
        the CPU, naming the first. On the GPU that check would wait for the device every batch, so a
        LabelRange screens them there: clipped into range (no index leaves its array), and compute raises
        LabelError naming a bad one, at every call until reset."""
        name = type(self).__name__
        if pred.ndim != 2:
            raise ShapeError(f"{name}: expected predictions of shape (batch, classes), got {tuple(pred.shape)}")
        if target.shape != pred.shape[:1]:
            raise ShapeError(f"{name}: expected labels of shape ({pred.shape[0]},), got {tuple(target.shape)}")
        if target.dtype.kind not in "iu":
            raise DtypeError(f"{name}: labels must be integers, got {target.dtype}; convert them with the "
                             "cost's prepareTarget")
        self.checkClasses(pred.shape[1])
        if isCuda:
            return self.labelRange.screen(target, pred.shape[1])
        self.rejectTargets(target, (target < 0) | (target >= pred.shape[1]),
                           f"label {{value}} at index {{index}} is out of range for {pred.shape[1]} classes")
        return target

    def checkClasses(self, classes):
        """Refuse predictions over a number of classes the metric cannot score (none by default)."""

    def checkLike(self, pred, target):
        """Regression input: a target of the prediction's shape; returns it."""
        if target.shape != pred.shape:
            raise ShapeError(f"{type(self).__name__}: target of shape {tuple(target.shape)} does not match "
                             f"prediction of shape {tuple(pred.shape)}")
        return target

    @staticmethod
    def mean(total, count):
        return float(total) / count if count else math.nan
