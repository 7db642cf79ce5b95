"""Costs: the error of a batch and its gradient (d loss / d prediction)."""
from .bce import BCE
from .cost import Cost
from .crossentropy import CrossEntropy
from .mse import MSE
