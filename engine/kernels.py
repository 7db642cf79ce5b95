"""Fused CuPy kernels compiled on first use, so that importing a module never needs CuPy.

A module keeps its kernel as a class attribute, built from the CUDA source beside its NumPy
path; the first call on a CUDA backend compiles it and CuPy caches the binary.
"""
from .backend import xp


class ElementwiseKernel:
    """A lazily built ``cupy.ElementwiseKernel``."""

    def __init__(self, inParams, outParams, operation, name, preamble=""):
        self.args = (inParams, outParams, operation, name)
        self.preamble = preamble
        self.kernel = None

    def __call__(self, *args, **kwargs):
        if self.kernel is None:
            self.kernel = xp.ElementwiseKernel(*self.args, preamble=self.preamble)
        return self.kernel(*args, **kwargs)


class ReductionKernel:
    """A lazily built ``cupy.ReductionKernel``."""

    def __init__(self, inParams, outParams, mapExpr, reduceExpr, postMapExpr, identity, name, preamble=""):
        self.args = (inParams, outParams, mapExpr, reduceExpr, postMapExpr, identity, name)
        self.preamble = preamble
        self.kernel = None

    def __call__(self, *args, **kwargs):
        if self.kernel is None:
            self.kernel = xp.ReductionKernel(*self.args, preamble=self.preamble)
        return self.kernel(*args, **kwargs)
