"""macrobatch import: an ONNX model (from PyTorch, Keras, ...) as a macrobatch model file, to train or serve."""


def importModel(args):
    """Import args.onnx and save it to args.out (nothing is written when the import is refused)."""
    try:
        from ..deploy.onnximport import OnnxImporter
    except ImportError as e:
        raise ImportError(f"macrobatch import needs onnx ({e}): pip install macrobatch[onnx]") from e
    imported = OnnxImporter(args.onnx)
    model, shapes = imported.module, imported.inputShapes
    model.save(args.out, inputShape=shapes[0] if len(shapes) == 1 else None)
    print(f"wrote {args.out}: {type(model).__name__} of {len(list(model.namedModules())) - 1} modules, "
          f"{model.paramCount():,} parameters, per-sample input shape{'s' if len(shapes) > 1 else ''} "
          f"{', '.join(str(s) for s in shapes)}")


def addParser(sub):
    i = sub.add_parser("import", help="build a model file from an ONNX model (needs macrobatch[onnx])",
                       description="Read an ONNX model of standard operators (as torch.onnx.export writes them) and "
                                   "write the macrobatch model computing it, weights included, for train, predict "
                                   "and summary. Axis 0 of each input is the batch. An operator macrobatch cannot "
                                   "compute is refused by name with its nodes, and nothing is written.")
    i.add_argument("onnx", help="ONNX file to read")
    i.add_argument("out", help="model file to write (HDF5, as Module.save)")
    i.set_defaults(run=importModel)
    return i
