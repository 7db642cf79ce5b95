"""OnnxGraph: the ONNX nodes and weights of a network as they are being built, one module after another."""
import numpy
from onnx import helper, numpy_helper

from ..engine.backend import toHost
from ..engine.errors import ConversionError
from ..modules.multimodule import shapeOf


class OnnxGraph:
    """Collects the nodes and initializers of an ONNX graph under unique names.

    converters: module class -> function(graph, module, value, path) returning the module's output value,
    where a value is the name of an ONNX tensor, or a list of them for a module taking or giving a list of
    arrays; path is the module's place in the network ('block1.0'), which prefixes the names it adds.
    Weights are stored as float32 (a float16 or bfloat16 model's widen exactly), so the graph computes in
    float32 whatever the model was trained in.
    """

    def __init__(self, converters):
        self.converters = converters
        self.nodes, self.initializers, self.names = [], [], set()

    def fresh(self, base):
        """base, or base with the first free suffix '_1', '_2', ... if taken; the name is then taken."""
        name, k = base, 0
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def convert(self, module, value, path):
        """The output value of module on value: its converter's graph, or ConversionError for a module
        without one (checked for the whole network before anything is built: see unconvertible)."""
        converter = self.converters.get(type(module))
        if converter is None:
            raise ConversionError(f"{describePath(module, path)}: no ONNX export for {type(module).__name__}")
        return converter(self, module, value, path)

    def unconvertible(self, net):
        """(path, class name) of every module in net without a converter, in order."""
        return [(prefix[:-1], type(mod).__name__) for prefix, mod in net.namedModules()
                if type(mod) not in self.converters]

    def tensor(self, path, ary, dtype=numpy.float32):
        """An initializer holding ary (a host or device array) as dtype; its name. path is the module's path and
        the array's key, as getVariables names them ('block1.0.W'; '.W' for a root module, named 'W')."""
        name = self.fresh(path.lstrip("."))
        self.initializers.append(numpy_helper.from_array(numpy.ascontiguousarray(toHost(ary), dtype=dtype), name))
        return name

    def ints(self, path, values):
        """An int64 initializer (shapes, pads, split sizes)."""
        return self.tensor(path, numpy.asarray(values), numpy.int64)

    def op(self, opType, inputs, path, outputs=1, **attrs):
        """Add one node; its output name, or the list of them when outputs > 1. An empty input name ''
        skips an optional input."""
        name = self.fresh(f"{path}/{opType}" if path else opType)
        names = [f"{name}:{k}" for k in range(outputs)]
        self.names.update(names)
        self.nodes.append(helper.make_node(opType, list(inputs), names, name=name, **attrs))
        return names[0] if outputs == 1 else names


def describePath(module, path):
    """How a message names a module: its path in the network and class, or the class for the root."""
    return f"{path!r} ({type(module).__name__})" if path else type(module).__name__


def inputShape(module):
    """The shape (or list of shapes) of the module's input in the probing forward pass exportOnnx runs
    before converting, for the converters that need a rank or a size."""
    return shapeOf(module.inData)


def refuse(module, path, reason):
    """ConversionError naming the module and why its configuration cannot be exported exactly."""
    raise ConversionError(f"{describePath(module, path)}: cannot be exported to ONNX exactly: {reason}")
