"""ONNX import: helpers the layer converters share (outputs in use, image inputs, weights into modules)."""
import numpy

from ..engine.backend import toDevice
from ..engine.errors import ConversionError
from .onnxview import fmt


def used(imp, name):
    """Whether an output is read by a node or is a graph output."""
    readers, isOutput = imp.consumers(name) if name else ([], False)
    return bool(readers) or isOutput


def refuseUsed(imp, node, indices, why):
    """ConversionError when one of the node's outputs at indices is used."""
    for i in indices:
        if i < len(node.output) and used(imp, node.output[i]):
            raise ConversionError(f"{imp.where(node)}: output {i} ({node.output[i]!r}) is used; {why}")


def imageInput(imp, node, ranks=(3, 4, 5)):
    """(ref, full ONNX shape) of input 0, a (batch, channels, *spatial) tensor."""
    view = imp.view(node, 0)
    shape = view.onnxShape
    if len(shape) not in ranks:
        raise ConversionError(f"{imp.where(node)}: expected an input of rank {' or '.join(map(str, ranks))}, "
                              f"got {fmt(shape)}")
    return view.materialize(imp.where(node)), shape


def setWeights(module, arrays, attrs=None):
    """Copy host arrays into a module's Variables and saved attrs (by name) on the device; returns module."""
    targets = [(module.vars[name].data, ary) for name, ary in arrays.items()]
    targets += [(module.attrs[name], ary) for name, ary in (attrs or {}).items()]
    for data, ary in targets:
        data[...] = toDevice(numpy.reshape(ary, data.shape), data.dtype)
    return module
