"""Costs: the error of a batch and its gradient (d loss / d prediction)."""
from .bce import BCE
from .cost import Cost
from .crossentropy import CrossEntropy
from .hinge import Hinge
from .kldivergence import KLDivergence
from .l1 import L1
from .mse import MSE
from .multi import Multi
from .smoothl1 import SmoothL1
