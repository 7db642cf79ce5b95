"""Optimizers: subtract a step built from the accumulated gradients, over one flat buffer per dtype."""
from .adagrad import AdaGrad
from .adam import Adam
from .adamw import AdamW
from .clipbyglobalnorm import ClipByGlobalNorm
from .clipbyvalue import ClipByValue
from .gradientaccumulation import GradientAccumulation
from .momentumsgd import MomentumSGD
from .nesterovsgd import NesterovSGD
from .optimizer import Optimizer
from .rmsprop import RMSProp
from .sgd import SGD
