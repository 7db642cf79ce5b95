"""Layers and containers; each file holds one module class."""
from .activation import Activation
from .avgpool2d import AvgPool2D
from .batchnorm import BatchNorm
from .batchnorm2d import BatchNorm2D
from .conv2d import Conv2D
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .maxpool2d import MaxPool2D
from .module import Module, buildFromBlueprint, loadModel, savedInputShape
from .pool2d import Pool2D
from .reshape import Reshape
from .sequential import Sequential
from .softmax import SoftMax
