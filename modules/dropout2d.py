"""Dropout2D: dropout of whole feature maps."""
from .dropout import Dropout


class Dropout2D(Dropout):
    """Zeroes each map (axis 1) of a (batch, maps, height, width) input with probability p in train
    mode, the whole map at once, and scales the kept maps by 1 / (1 - p); the identity in eval mode.
    Neighbouring pixels of a map are strongly correlated, so dropping single pixels (Dropout) barely
    regularises a convolutional layer; dropping maps does, as torch's Dropout2d. One mask value per
    (sample, map), drawn with engine.random.uniform; backward applies the same mask."""

    def checkDataShape(self, shape):
        self.checkRank(shape, 4, "(batch, maps, height, width)")

    def maskShape(self, shape):
        return shape[:2] + (1, 1)
