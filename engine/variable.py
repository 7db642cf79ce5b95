"""Variable: a trainable array and the gradient accumulated for it."""
from .backend import xp


class Variable:
    """Holds ``data`` and ``grad`` (same shape and dtype).

    Modules add into ``grad`` (they never overwrite it), so gradients of a weight used twice
    sum up; ``Optimizer.zeroGradParams`` clears them. An optimizer with global state may rebind
    ``data`` and ``grad`` to views of its flat buffers: always reach the arrays through the
    Variable, never keep your own reference.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = data
        self.grad = xp.zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def __repr__(self):
        return f"Variable(shape={self.shape}, dtype={self.dtype})"
