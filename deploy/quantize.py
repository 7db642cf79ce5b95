"""Post-training quantisation of a float32 network to float16 or int8, and the sizes of its saved files.

int8: every Linear and Conv1D/2D/3D becomes an Int8Linear / Int8Conv (per-output-channel symmetric int8
weights, an input scale from calibration batches); every other module stays float32. float16: the whole
network cast (weights and compute in float16; NumPy multiplies float16 as float32 copies, see
engine.gemm). The result saves with Module.save and loads with loadQuantized.
"""
import os
import tempfile

import numpy

from ..engine import serialize
from ..engine.backend import toDevice, toHost
from ..engine.errors import DtypeError
from ..engine.int8 import quantizeWeights, scaleFor
from ..modules.conv1d import Conv1D
from ..modules.conv2d import Conv2D
from ..modules.conv3d import Conv3D
from ..modules.graph import Graph
from ..modules.int8conv import Int8Conv
from ..modules.int8linear import Int8Linear
from ..modules.linear import Linear
from ..modules.module import buildFromBlueprint, loadModel
from ..modules.sequential import Sequential
from .calibration import activationRanges

precisions = ("float16", "int8")
quantizable = (Linear, Conv1D, Conv2D, Conv3D)


def quantizeModel(net, to, batches=None, method="minmax", percentile=99.99):
    """A new network: net (float32, left unchanged) in precision `to` ('float16' or 'int8').

    int8 needs batches, host arrays of inputs (a few hundred samples of training data), from which
    calibration.activationRanges takes each quantised layer's input range with method ('minmax' or
    'percentile', at percentile). Errors are raised before anything is built.
    """
    if to not in precisions:
        raise ValueError(f"quantize: precision must be one of {', '.join(map(repr, precisions))}, got {to!r}")
    if net.dtype is not None and net.dtype != numpy.float32:
        raise DtypeError(f"quantize: {net.describe()} is {net.dtype}; quantize its float32 version")
    if to == "int8" and batches is None:
        raise ValueError("quantize: int8 needs calibration batches (inputs of the network)")
    copy = buildFromBlueprint(net.getBlueprint())
    copy.setState(net.getState())
    if to == "float16":
        return copy.cast(numpy.float16)
    layers = {prefix[:-1]: mod for prefix, mod in copy.namedModules() if type(mod) in quantizable}
    amax = activationRanges(copy, batches, list(layers), method, percentile)
    for path, mod in layers.items():
        int8 = int8Module(mod, amax[path])
        if path == "":
            return int8
        parent = copy if "." not in path else dict(copy.namedModules())[path.rpartition(".")[0] + "."]
        replaceChild(parent, mod, int8)
    return copy


def int8Module(mod, amax):
    """The Int8Linear or Int8Conv for a float Linear or Conv mod, with its weights quantised per output
    channel and its input scale from amax."""
    args = {k: v for k, v in mod.blueprintArgs.items() if k != "initscheme"}
    args["name"] = mod.name
    int8 = Int8Linear(**args) if isinstance(mod, Linear) else Int8Conv(mod.nd, **args)
    W, scale = quantizeWeights(toHost(mod.vars["W"].data), axis=1 if isinstance(mod, Linear) else 0)
    int8.attrs["W"], int8.attrs["wScale"] = toDevice(W), toDevice(scale)
    int8.attrs["inScale"] = toDevice(scaleFor([amax]))
    if "b" in mod.vars:
        int8.vars["b"].data[...] = mod.vars["b"].data
    return int8


def replaceChild(parent, old, new):
    """Put new where old is among parent's children (a Sequential's list, or a Graph's or Parallel's node)."""
    if isinstance(parent, Sequential):
        parent.modules[parent.modules.index(old)] = new
    elif isinstance(parent, Graph):
        next(node for node in parent.steps if node.module is old).module = new
    else:
        raise TypeError(f"quantize: cannot replace a child of {parent.describe()}")


def loadQuantized(path):
    """loadModel, with the parameters in the dtype they were saved in: loadModel builds float32 layers and
    would widen a float16 file's weights back to float32."""
    net = loadModel(path)
    with serialize.openH5(path) as f:
        dtypes = {ds.dtype for ds in f["params"].values()} if "params" in f else set()
    return net.cast(numpy.float16) if dtypes == {numpy.dtype(numpy.float16)} else net


def fileSizes(net, inputShape):
    """Bytes of net's model file at float32, float16 and int8, measured on files written to a temporary
    folder (HDF5 adds a header and per-array metadata that parameter arithmetic leaves out). int8 is
    calibrated on one batch of zeros of inputShape (per sample): calibration sets the input scales' values,
    not the file's size."""
    sizes = {}
    with tempfile.TemporaryDirectory() as folder:
        for precision in ("float32",) + precisions:
            zeros = [numpy.zeros((1,) + tuple(inputShape), dtype=numpy.float32)]
            model = net if precision == "float32" else quantizeModel(net, precision, zeros)
            path = os.path.join(folder, precision + ".h5")
            model.save(path, inputShape)
            sizes[precision] = os.path.getsize(path)
    return sizes
