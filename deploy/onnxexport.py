"""exportOnnx: a macrobatch network as an ONNX model, for ONNX Runtime and every tool that reads ONNX."""
import numpy
import onnx
from onnx import TensorProto, helper

from ..engine.backend import toDevice
from ..engine.dtype import defaultDtype
from ..engine.errors import ConversionError, ShapeError
from ..engine.serialize import writeAtomically
from ..modules.embedder import Embedder
from ..modules.graph import Graph
from ..modules.multimodule import shapeOf
from ..modules.sequential import Sequential
from ..modules.summary import inputShapeFor
from .onnxconverters import converters
from .onnxgraph import OnnxGraph


def exportOnnx(net, path, inputShape=None, opset=17):
    """Write net to path as an ONNX model of the standard operators (toOnnx, whose arguments it takes), atomically:
    a temporary beside path, fsynced, then renamed over it. Nothing is written unless the whole model converts
    and passes onnx.checker. Returns the onnx.ModelProto."""
    model = toOnnx(net, inputShape, opset)
    writeAtomically(path, model.SerializeToString())
    return model


def toOnnx(net, inputShape=None, opset=17):
    """net as an onnx.ModelProto of the standard operators (opset `opset`, 17 or newer), checked by onnx.checker.

    inputShape: the shape of one sample without the batch axis, or for a Graph of several inputs the list of
    them (() for one index per sample into an Embedder); None infers it as summary does (a first Linear or
    BatchNorm fixes it), else ShapeError. The batch axis is dynamic (named 'batch'). The graph computes what
    net computes in eval mode: Dropout is left out, BatchNorm normalises with its running statistics. Inputs
    are float32, or int32 indices where an Embedder reads them; weights are float32 (a float16 or bfloat16
    model's widen exactly), named as getVariables and getAttrs name them. One eval-mode forward pass on zeros
    of that shape (every module's mode is left as it was) proves the shape and gives the converters the ranks
    and sizes they need. A module without an ONNX converter, or an option with no exact ONNX equivalent,
    raises ConversionError naming it.
    """
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not 17 <= opset <= latest:
        raise ValueError(f"opset must be an int from 17 to {latest} (the newest this onnx knows), got {opset!r}")
    g = OnnxGraph(converters)
    missing = g.unconvertible(net)
    if missing:
        hint = ("; int8 layers are exported from the float model: macrobatch quantize --onnx writes the int8 "
                "(QDQ) ONNX model" if any(name.startswith("Int8") for _, name in missing) else "")
        raise ConversionError("no ONNX export for " + ", ".join(f"{path!r} ({name})" if path else name
                                                                for path, name in missing) + hint)
    shapes = sampleShapes(net, inputShape)
    indexInputs = [takesIndices(net, i) for i in range(len(shapes))]
    probe = [toDevice(numpy.zeros((1,) + shape), Embedder.indexDtype if index else (net.dtype or defaultDtype))
             for shape, index in zip(shapes, indexInputs)]
    listInput = isinstance(net, Graph) and net.listInput
    with net.evaluating():
        out = net(probe if listInput else probe[0])
    listOutput = isinstance(out, list)
    inNames = [f"input{i}" for i in range(len(shapes))] if listInput else ["input"]
    outs = g.convert(net, inNames if listInput else inNames[0], "")
    outShapes = shapeOf(out) if listOutput else [shapeOf(out)]
    outNames = [f"output{i}" for i in range(len(outShapes))] if listOutput else ["output"]
    for value, name in zip(outs if listOutput else [outs], outNames):
        g.nodes.append(helper.make_node("Identity", [value], [name], name=g.fresh(name)))
    graph = helper.make_graph(
        g.nodes, type(net).__name__,
        [tensorInfo(name, TensorProto.INT32 if index else TensorProto.FLOAT, shape)
         for name, index, shape in zip(inNames, indexInputs, shapes)],
        [tensorInfo(name, TensorProto.FLOAT, shape[1:]) for name, shape in zip(outNames, outShapes)],
        g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="macrobatch",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model, full_check=True)
    return model


def sampleShapes(net, inputShape):
    """The per-sample shape of each input, as a list: several for a Graph of list input. () is a shape too for
    an input of indices, one per sample (an Embedder on (batch,) indices)."""
    if isinstance(net, Graph) and net.listInput:
        if inputShape is None or len(inputShape) != len(net.inputs) or \
                not all(isinstance(s, (tuple, list)) for s in inputShape):
            raise ShapeError(f"{net.describe()} takes {len(net.inputs)} inputs: give inputShape as a list of "
                             f"{len(net.inputs)} per-sample shapes, got {inputShape!r}")
        shapes = inputShape
    else:
        shapes = [inputShape]
    return [() if shape is not None and tuple(shape) == () and takesIndices(net, i) else inputShapeFor(net, shape)
            for i, shape in enumerate(shapes)]


def takesIndices(module, position=0):
    """Whether the module's input (its position-th, for a Graph of list input) goes to an Embedder first."""
    if isinstance(module, Embedder):
        return True
    if isinstance(module, Sequential):
        return bool(module.modules) and takesIndices(module.modules[0], position)
    if isinstance(module, Graph):
        node = module.inputs[position]
        return any(parent is node and takesIndices(step.module, j if len(step.parents) > 1 else 0)
                   for step in module.steps for j, (parent, _) in enumerate(step.parents))
    return False


def tensorInfo(name, elemType, shape):
    return helper.make_tensor_value_info(name, elemType, ["batch", *shape])
