"""Multi: one cost for a model with several outputs, the weighted sum of a cost per output."""
import math

from ..engine.errors import MacrobatchError, PerSampleError, ShapeError
from .cost import Cost


class Multi(Cost):
    """``Multi(CrossEntropy(), MSE(), weights=[1.0, 0.5])``: pred and target are lists with one
    entry per cost (the model's outputs and their targets, in the same order).

    error = sum of weights[i] * costs[i]'s error; grad = the list of weights[i] * costs[i]'s gradient.
    Each cost also keeps its own accumulator, so getMetrics reports the total ``error`` and every
    cost's metrics under its position (``"0.error"``, ``"0.accuracy"``, ``"1.error"``, ...).
    weights: one finite number >= 0 per cost, or None for all 1.
    """

    def __init__(self, *costs, weights=None):
        super().__init__()
        if not costs or not all(isinstance(cost, Cost) for cost in costs):
            raise TypeError(f"Multi: expected one or more Cost instances, got {costs!r}")
        weights = [1.0] * len(costs) if weights is None else [float(w) for w in weights]
        if len(weights) != len(costs):
            raise ValueError(f"Multi: {len(weights)} weights for {len(costs)} costs")
        for i, weight in enumerate(weights):
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"Multi: weight {weight} of cost {i} is not a finite number >= 0")
        self.costs, self.weights = costs, weights

    @property
    def samplewise(self):
        """A weighted sum of samplewise costs is samplewise."""
        return all(cost.samplewise for cost in self.costs)

    def checkSamplewise(self):
        """Each cost's check; a refusal names the cost's position."""
        for i, cost in enumerate(self.costs):
            try:
                cost.checkSamplewise()
            except PerSampleError as error:
                raise PerSampleError(f"cost {i} of Multi: {error}") from error

    def checkLists(self, what, items):
        if not isinstance(items, (list, tuple)) or len(items) != len(self.costs):
            got = f"a list of {len(items)}" if isinstance(items, (list, tuple)) else type(items).__name__
            raise ShapeError(f"Multi: expected a list of {len(self.costs)} {what}, one per cost, got {got}")

    def prepareTarget(self, target):
        """Each target prepared by its own cost; an error raised there names the target's position."""
        self.checkLists("targets", target)
        prepared = []
        for i, (cost, ary) in enumerate(zip(self.costs, target)):
            try:
                prepared.append(cost.prepareTarget(ary))
            except MacrobatchError as error:
                raise type(error)(f"target[{i}]: {error}") from error
        return prepared

    def validate(self, pred, target):
        """The weighted sum of the costs' errors, each cost accumulating its own; the total is
        accumulated with the batch size of the first output."""
        self.checkLists("predictions", pred)
        self.checkLists("targets", target)
        error = sum(weight * cost.validate(p, t) for cost, weight, p, t in zip(self.costs, self.weights, pred, target))
        self.accumErr += error * pred[0].shape[0]
        self.accumCount += pred[0].shape[0]
        return error

    def calcGrad(self, pred, target):
        grads = [cost.calcGrad(p, t) for cost, p, t in zip(self.costs, pred, target)]
        for grad, weight in zip(grads, self.weights):
            if weight != 1.0:
                grad *= weight
        return grads

    def independentTerms(self, grad):
        """Each cost's independentTerms of its own gradient (a weight scales it and commutes)."""
        return [cost.independentTerms(g) for cost, g in zip(self.costs, grad)]

    def checkTargets(self):
        for cost in self.costs:
            cost.checkTargets()

    def getMetrics(self):
        metrics = super().getMetrics()
        for i, cost in enumerate(self.costs):
            metrics.update({f"{i}.{key}": value for key, value in cost.getMetrics().items()})
        return metrics

    def resetAccumulator(self):
        super().resetAccumulator()
        for cost in self.costs:
            cost.resetAccumulator()

    def getAccumulator(self):
        return super().getAccumulator() | {"costs": {str(i): cost.getAccumulator() for i, cost in enumerate(self.costs)}}

    def setAccumulator(self, saved):
        super().setAccumulator(saved)
        for i, cost in enumerate(self.costs):
            cost.setAccumulator(saved["costs"][str(i)])


def targetCount(cost):
    """How many target arrays cost takes: one per cost of a Multi (a list, one per model output), else one."""
    return len(cost.costs) if isinstance(cost, Multi) else 1


def targetArrays(target):
    """The arrays of a target: none (None), the one array, or a Multi's list (one per model output)."""
    if target is None:
        return []
    return list(target) if isinstance(target, (list, tuple)) else [target]


def mapAccumulator(saved, fn):
    """A cost's getAccumulator() with fn applied to each entry (arrays and host counts), into the
    accumulators a Multi nests per cost."""
    return {key: mapAccumulator(value, fn) if isinstance(value, dict) else fn(value) for key, value in saved.items()}
