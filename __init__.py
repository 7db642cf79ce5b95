"""macrobatch: Module, Cost and Optimizer primitives on device arrays, driven by handlers
(Trainer, Validator, Calculator) that stream host data to the device in macrobatches."""
from . import costs, engine, handlers, modules, optimizers
from .engine import backend, setSeed
from .modules import loadModel

__version__ = "0.1.0"
