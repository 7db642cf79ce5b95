"""importOnnx: a macrobatch network, weights included, from an ONNX graph of standard operators."""
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from ..engine.errors import ConversionError, ModelFileError
from ..modules.graph import Graph
from ..modules.node import Node
from ..modules.sequential import Sequential
from .onnxfold import Folded, foldNode, shapeOfView
from .importlayers import layerConverters
from .importlayout import layoutConverters
from .onnxview import OnnxView

converters = {**layerConverters, **layoutConverters}


def importOnnx(path):
    """The macrobatch Module (in train mode, as any new module) computing the ONNX model at path: a
    Sequential when its graph is a chain, else a Graph of Nodes. See OnnxImporter."""
    return OnnxImporter(path).module


class OnnxImporter:
    """Reads an ONNX model and builds its macrobatch network: ``module``, and ``inputShapes``, the
    per-sample shape of each graph input.

    Axis 0 of every graph input is the batch, kept dynamic; the other axes must be fixed. Nodes that do
    not depend on the inputs' values (weights, Constant, and the Shape, Gather, Unsqueeze, Concat
    chains exporters compute shapes with) are folded at import time (onnxfold). Every other node is
    converted to macrobatch modules by the converter of its operator (importlayers, importlayout), with the
    weights copied to the device; an operator without one is refused by name with its nodes, all of
    them at once, before anything is built. Tensors whose batch axis is not first (an LSTM's) stay lazy
    views until a module reads them (onnxview).
    """

    def __init__(self, path):
        try:
            model = onnx.load(str(path))
        except (OSError, DecodeError) as e:
            raise ModelFileError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from e
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if self.opset is None:
            raise ConversionError(f"{path}: the model imports no standard ONNX opset")
        self.values, self.absorbed = {"": None}, set()
        self.producers = {out: node for node in self.graph.node for out in node.output}
        self.consumerLists = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumerLists.setdefault(name, []).append(node)
        self.checkSupported(path)
        self.inputNodes, self.inputShapes = self.readInputs(path)
        for node in self.graph.node:
            if node.output[0] not in self.absorbed:
                self.convertNode(node)
        self.module = self.assemble(path)

    # --- what a converter sees --------------------------------------------------------------

    @staticmethod
    def where(node):
        """The node as error messages name it."""
        return f"{node.op_type} node {node.name or node.output[0]!r}"

    @staticmethod
    def attrs(node):
        """The node's attributes, name -> value (strings decoded)."""
        out = {}
        for attr in node.attribute:
            value = helper.get_attribute_value(attr)
            if isinstance(value, list):
                value = [v.decode() if isinstance(v, bytes) else v for v in value]
            out[attr.name] = value.decode() if isinstance(value, bytes) else value
        return out

    def input(self, node, i):
        """The i-th input: an OnnxView, a Folded, or None when omitted."""
        return self.values[node.input[i]] if i < len(node.input) else None

    def view(self, node, i):
        """The i-th input, which must be computed from the graph inputs (an OnnxView)."""
        value = self.input(node, i)
        if not isinstance(value, OnnxView):
            raise ConversionError(f"{self.where(node)}: input {i} must be computed from the graph inputs, "
                                  "not a constant")
        return value

    def const(self, node, i, default=None):
        """The i-th input as a host array that depends on nothing (a weight), default when omitted."""
        value = self.input(node, i)
        if value is None:
            return default
        static = value.static() if isinstance(value, Folded) else None
        if static is None:
            raise ConversionError(f"{self.where(node)}: input {i} ({node.input[i]!r}) must be a constant")
        return static

    def consumers(self, name):
        """The nodes reading the tensor name, and whether a graph output is it."""
        return self.consumerLists.get(name, []), any(out.name == name for out in self.graph.output)

    def producer(self, name):
        """The node computing the tensor name (None for an input or a weight)."""
        return self.producers.get(name)

    def absorb(self, node):
        """Mark node as converted with the one before it (MatMul's bias Add)."""
        self.absorbed.add(node.output[0])

    def setOutput(self, node, i, value):
        """Give the node's i-th output its value (an OnnxView or a Folded)."""
        self.values[node.output[i]] = value

    @staticmethod
    def apply(module, parents, shape):
        """An OnnxView of module applied to parents (Graph refs, or a list of them), of full shape."""
        return OnnxView(Node(module, parents), shape)

    @staticmethod
    def node(module, parents):
        """The Graph Node of module applied to parents, for a module whose output is a list (Split)."""
        return Node(module, parents)

    # --- the walk ---------------------------------------------------------------------------

    def dataNodes(self):
        """The nodes that depend on a graph input's values (Shape and Size read only its shape)."""
        initializers = {init.name for init in self.graph.initializer}
        data = {inp.name for inp in self.graph.input if inp.name not in initializers}
        nodes = []
        for node in self.graph.node:
            if any(name in data for name in node.input):
                nodes.append(node)
                if node.op_type not in ("Shape", "Size"):
                    data.update(node.output)
        return nodes

    def checkSupported(self, path):
        """ConversionError naming every operator (with its nodes) that macrobatch cannot compute."""
        missing = {}
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx"):
                missing.setdefault(f"{node.domain}.{node.op_type}", []).append(node.name or node.output[0])
        for node in self.dataNodes():
            if node.op_type not in converters and node.op_type not in ("Shape", "Size"):
                missing.setdefault(node.op_type, []).append(node.name or node.output[0])
        if missing:
            listed = "; ".join(f"{op} (nodes {', '.join(map(repr, names))})" for op, names in sorted(missing.items()))
            raise ConversionError(f"{path}: operators macrobatch cannot import: {listed}. Supported on data: "
                                  f"{', '.join(sorted(converters))}")

    def readInputs(self, path):
        """Input Nodes by name (as OnnxViews in values) and their per-sample shapes; the weights as Folded."""
        for init in self.graph.initializer:
            self.values[init.name] = Folded.constant(numpy_helper.to_array(init))
        nodes, shapes = [], []
        for inp in self.graph.input:
            if inp.name in self.values:
                continue
            dims = inp.type.tensor_type.shape.dim
            sample = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
            if not dims or None in sample:
                raise ConversionError(f"{path}: input {inp.name!r} must have a batch axis first and fixed sizes "
                                      f"after it, got {[d.dim_value or d.dim_param or '?' for d in dims]}")
            node = Node()
            nodes.append(node)
            shapes.append(tuple(sample))
            self.values[inp.name] = OnnxView(node, (None, *sample))
        if not nodes:
            raise ConversionError(f"{path}: the graph has no inputs")
        return nodes, shapes

    def convertNode(self, node):
        """Set the node's outputs: folded when it reads no computed tensor's values, else by its converter."""
        inputs = [self.values[name] if name in self.values else self.missing(node, name) for name in node.input]
        if node.op_type in ("Shape", "Size") and isinstance(inputs[0], OnnxView):
            attrs = self.attrs(node)
            folded = shapeOfView(inputs[0].onnxShape, attrs.get("start", 0), attrs.get("end"))
            if node.op_type == "Size":
                folded = Folded(v.prod() for v in folded.values)
            self.setOutput(node, 0, folded)
        elif not any(isinstance(value, OnnxView) for value in inputs):
            try:
                folded = foldNode(node, inputs, self.opset)
            except Exception as e:  # onnx's reference implementations raise errors of many kinds
                raise ConversionError(f"{self.where(node)}: cannot be computed at import time "
                                      f"({type(e).__name__}: {e})") from e
            for i, value in enumerate(folded):
                self.setOutput(node, i, value)
        else:
            try:
                converters[node.op_type](self, node)
            except ConversionError:
                raise
            except ValueError as e:  # a module refusing the node's arguments
                raise ConversionError(f"{self.where(node)}: {e}") from e

    def missing(self, node, name):
        """ConversionError for an input no node before this one computes."""
        raise ConversionError(f"{self.where(node)}: input {name!r} is not computed before it (graph not sorted)")

    def assemble(self, path):
        """The Graph from the inputs to the outputs, or the Sequential it is when it is a chain."""
        outputs = []
        for out in self.graph.output:
            value = self.values.get(out.name)
            ref = value.materialize(f"output {out.name!r}") if isinstance(value, OnnxView) else None
            if ref is None or ref in self.inputNodes:
                raise ConversionError(f"{path}: output {out.name!r} must be computed by modules from the inputs")
            outputs.append(ref)
        single = len(self.inputNodes) == 1
        graph = Graph(self.inputNodes[0] if single else self.inputNodes, outputs[0] if len(outputs) == 1 else outputs)
        previous = (self.inputNodes[0], None)
        for node in graph.steps:
            if node.parents != [previous]:
                return graph
            previous = (node, None)
        if not single or len(outputs) != 1 or Node.asRef(outputs[0]) != previous:
            return graph
        return Sequential(*(node.module for node in graph.steps))

