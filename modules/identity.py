"""Identity: passes its input through."""
from .module import Module


class Identity(Module):
    """Returns its input (and the gradient) unchanged, without a copy: a placeholder where a layer is
    optional (a skip connection's shortcut, a switched-off normalisation). Any shape and float dtype."""

    def __init__(self, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())

    def updateData(self, data):
        return data

    def updateGrad(self, grad):
        return grad
