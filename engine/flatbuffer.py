"""FlatBuffer: the parameters of one dtype in one contiguous array, their gradients in another."""
from .backend import xp


class FlatBuffer:
    """Packs Variables of one dtype into two flat device arrays, ``data`` and ``grad``, and rebinds
    each Variable's ``data`` and ``grad`` to reshaped views of them (values are kept). Zeroing,
    updating and all-reducing every parameter of the dtype are then one operation each.

    ``variables[i]`` occupies ``[offsets[i], offsets[i] + variables[i].size)`` of both arrays. Each
    view starts on a multiple of ``align`` bytes, the alignment cudaMalloc gives, so GEMM and
    convolution kernels see the same pointers as for separately allocated weights. The gaps are
    zero in data and grad; no module writes them, so every optimizer leaves them zero.
    """

    align = 256

    def __init__(self, variables):
        self.variables = list(variables)
        self.dtype = self.variables[0].dtype
        step = max(1, self.align // self.dtype.itemsize)
        self.offsets, size = [], 0
        for var in self.variables:
            self.offsets.append(size)
            size += -(-var.size // step) * step
        self.data = xp.zeros(size, dtype=self.dtype)
        self.grad = xp.zeros(size, dtype=self.dtype)
        for var, offset in zip(self.variables, self.offsets):
            shape, end = var.shape, offset + var.size
            self.data[offset:end] = var.data.ravel()
            self.grad[offset:end] = var.grad.ravel()
            var.data = self.data[offset:end].reshape(shape)
            var.grad = self.grad[offset:end].reshape(shape)
