"""Learning-rate schedules: functions of a step counter (or of the metrics) that drive optimizer.learnRate."""
from .cosinedecay import CosineDecay
from .exponentialdecay import ExponentialDecay
from .linearwarmup import LinearWarmup
from .reduceonplateau import ReduceOnPlateau
from .schedule import Schedule
from .stepdecay import StepDecay
