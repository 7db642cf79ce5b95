"""Handlers walk data in macrobatches and batches: Trainer, Validator, Calculator."""
from .calculator import Calculator
from .handler import Handler
from .trainer import Trainer
from .validator import Validator
