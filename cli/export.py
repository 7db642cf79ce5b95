"""macrobatch export: a saved model as an ONNX file, for ONNX Runtime and every tool that reads ONNX."""
from ..modules.module import loadModel, savedInputShape
from ..modules.summary import parseShape
from .arguments import positiveInt


def export(args):
    try:
        from ..deploy.onnxexport import exportOnnx
    except ImportError as e:
        raise ImportError(f"macrobatch export needs onnx ({e}): pip install macrobatch[onnx]") from e
    model = loadModel(args.model)
    shape = args.shape or savedInputShape(args.model)
    onnxModel = exportOnnx(model, args.out, shape, opset=args.opset)
    print(f"wrote {args.out}: ONNX opset {args.opset}, {len(onnxModel.graph.node)} nodes, "
          f"{model.paramCount():,} parameters, inputs {describe(onnxModel.graph.input)}, "
          f"outputs {describe(onnxModel.graph.output)}")


def describe(infos):
    """'name (batch, 1, 8, 8)' for each ONNX graph input or output."""
    return ", ".join(f"{i.name} ({', '.join(d.dim_param or str(d.dim_value) for d in i.type.tensor_type.shape.dim)})"
                     for i in infos)


def addParser(sub):
    e = sub.add_parser("export", help="write a saved model as an ONNX file (needs macrobatch[onnx])",
                       description="Convert a model file written by training into an ONNX model of standard "
                                   "operators with a dynamic batch axis, computing what the model computes in eval "
                                   "mode (Dropout left out, BatchNorm with its running statistics). A module or "
                                   "option without an exact ONNX equivalent is refused by name, and nothing is "
                                   "written.")
    e.add_argument("model", help="model file written by training (Module.save)")
    e.add_argument("out", help="ONNX file to write")
    e.add_argument("--shape", type=parseShape, help="per-sample input shape, e.g. 1,8,8 (default: recorded in the "
                                                     "file, or inferred from a first Linear layer)")
    e.add_argument("--opset", type=positiveInt, default=17, help="ONNX operator set version, 17 or newer")
    e.set_defaults(run=export)
    return e
