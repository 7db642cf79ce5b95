"""Layers and containers; each file holds one module class."""
from .linear import Linear
from .module import Module, buildFromBlueprint, loadModel
from .sequential import Sequential
