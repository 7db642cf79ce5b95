"""Variable: a trainable array and the gradient accumulated for it."""
from .backend import xp
from .dtype import statDtype
from .gemm import matmul


class Variable:
    """Holds ``data`` and ``grad`` (same shape and dtype).

    Gradients accumulate: modules add into ``grad``, so the gradients of a weight used twice sum
    up. ``zeroGrad()`` clears it lazily, as PyTorch's set-to-None does: it only marks the array
    stale, and the next ``accumulate*`` call writes its result straight into it (a GEMM or a sum
    with ``out=``) instead of adding to zeros, which saves a fill and an add pass over every
    weight per step. Reading ``grad`` while stale fills it with zeros first, so ``grad`` always
    shows the true gradient.

    An optimizer with global state may rebind ``data`` and ``grad`` to views of its flat buffers:
    always reach the arrays through the Variable, never keep your own reference.
    """

    __slots__ = ("data", "_grad", "gradStale")

    def __init__(self, data):
        self.data = data
        self._grad = xp.zeros_like(data)
        self.gradStale = False

    @property
    def grad(self):
        if self.gradStale:
            self._grad.fill(0)
            self.gradStale = False
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad = value
        self.gradStale = False

    def zeroGrad(self):
        """Set the gradient to zero (lazily: see the class docstring)."""
        self.gradStale = True

    def accumulate(self, value):
        """grad += value (value has grad's shape, or is reshaped to it)."""
        if self.gradStale:
            self._grad[...] = value.reshape(self._grad.shape)
            self.gradStale = False
        else:
            self._grad += value.reshape(self._grad.shape)

    def accumulateMatmul(self, a, b):
        """grad += a @ b, written by the GEMM itself when the gradient was just zeroed; a @ b is
        (rows, cols) and grad any shape of that size (a conv weight's (outmaps, inmaps, fh, fw))."""
        if self.gradStale:
            matmul(a, b, out=self._grad.reshape(a.shape[0], b.shape[1]))
            self.gradStale = False
        else:
            self._grad += matmul(a, b).reshape(self._grad.shape)

    def accumulateSum(self, ary, axis):
        """grad += ary.sum(axis), the reduction writing into grad when it was just zeroed. 16-bit data is
        summed in float32 (statDtype): NumPy adds float16 along an axis in float16, which loses a bias
        gradient summed over a batch (CuPy's half sums take float already)."""
        dtype = statDtype(ary.dtype)
        if self.gradStale and dtype == self._grad.dtype:
            ary.sum(axis=axis, out=self._grad)
        elif self.gradStale:
            self._grad[...] = ary.sum(axis=axis, dtype=dtype)
        else:
            self._grad += ary.sum(axis=axis, dtype=dtype)
        self.gradStale = False

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
