"""Optimizers: subtract a step built from the accumulated gradients, over one flat buffer per dtype."""
from .adadelta import AdaDelta
from .adagrad import AdaGrad
from .adam import Adam
from .adamw import AdamW
from .clipbyglobalnorm import ClipByGlobalNorm
from .clipbyvalue import ClipByValue
from .gradientaccumulation import GradientAccumulation
from .lars import LARS
from .lossscaler import LossScaler
from .momentumsgd import MomentumSGD
from .nesterovsgd import NesterovSGD
from .optimizer import Optimizer
from .rmsprop import RMSProp
from .rmspropgraves import RMSPropGraves
from .sgd import SGD
from .weightdecay import WeightDecay
