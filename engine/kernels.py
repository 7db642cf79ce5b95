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
        self.gatedKernel = None

    def __call__(self, *args, **kwargs):
        if self.kernel is None:
            self.kernel = xp.ElementwiseKernel(*self.args, preamble=self.preamble)
        return self.kernel(*args, **kwargs)

    def gated(self):
        """The same kernel with a leading ``bool gate`` input (a 0-d device bool, broadcast): where it is
        false the body does not run and the outputs keep their values. A skipped mixed-precision step
        leaves the weights and the optimizer state untouched this way, without the host reading the flag."""
        if self.gatedKernel is None:
            inParams, outParams, operation, name = self.args
            self.gatedKernel = ElementwiseKernel("bool gate, " + inParams, outParams,
                                                 "if (gate) {" + operation + "}", name + "_gated", self.preamble)
        return self.gatedKernel


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
