"""Metrics: accumulators of classification and regression scores over batches, for the Validator."""
from .accuracy import Accuracy
from .confusionmatrix import ConfusionMatrix
from .meanabsoluteerror import MeanAbsoluteError
from .meansquarederror import MeanSquaredError
from .metric import Metric
from .topkaccuracy import TopKAccuracy
