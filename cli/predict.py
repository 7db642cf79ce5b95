"""macrobatch predict: a saved model's class probabilities (or raw scores) for an HDF5 dataset; for a model
trained on several targets, each head's."""
from pathlib import Path

from ..engine import serialize
from ..engine.errors import ShapeError
from ..handlers import fit
from ..models import outputHeads
from ..modules.module import loadModel, savedInputShape
from ..modules.softmax import SoftMax
from .arguments import macroBatchArg, positiveInt


def checkInputShape(modelPath, data, name):
    """The file's samples shaped as the model was trained on, when its file records that shape."""
    expected, held = savedInputShape(modelPath), tuple(data.shape[1:])
    if expected is not None and tuple(expected) != held:
        hint = (" (channels last: transpose with numpy.transpose(x, (0, 3, 1, 2)))"
                if len(held) == 3 and (held[2], held[0], held[1]) == tuple(expected) else "")
        raise ShapeError(f"the model takes {tuple(expected)}, the file holds {held} in {name!r}{hint}")


def predict(args):
    model = loadModel(args.model)
    out = Path(args.out) if args.out else Path(args.data).with_suffix(".pred.h5")
    heads = outputHeads(model)
    with serialize.openH5(args.data) as f:
        data = serialize.getDataset(f, args.dataset)
        checkInputShape(args.model, data, args.dataset)
        outputs = fit.predict(model, data, batchsize=args.batchsize, macroBatchSize=args.macrobatch,
                              softmax=not args.logits and heads is None)
    if heads is not None:
        return predictHeads(args, out, heads, outputs)
    classify = outputs.ndim == 2
    with serialize.atomicH5(out) as f:
        f.create_dataset("outputs", data=outputs)
        f["outputs"].attrs["kind"] = "logits" if args.logits else "probabilities"
        if classify:
            f.create_dataset("labels", data=outputs.argmax(axis=1))
    kind = "raw scores (logits)" if args.logits else "class probabilities (softmax)"
    print(f"wrote {out}: outputs {outputs.shape}, {kind}" + (", labels (argmax)" if classify else ""))


def predictHeads(args, out, heads, outputs):
    """The outputs of a model with several: 'outputs', 'outputs_1', ... in the heads' order, each naming
    its target (a model train built for several targets); a classifier head's class probabilities
    (--logits: raw scores) with its argmax as 'labels', 'labels_1', ..., other heads' values as they are."""
    written = []
    with serialize.atomicH5(out) as f:
        for i, ((kind, target), values) in enumerate(zip(heads, outputs)):
            name, classify = "outputs" + (f"_{i}" if i else ""), kind == "classes"
            if classify and not args.logits:
                values = fit.predict(SoftMax(), values, batchsize=args.batchsize, macroBatchSize=args.macrobatch)
            what = "logits" if classify and args.logits else "probabilities" if classify else "values"
            f.create_dataset(name, data=values)
            f[name].attrs["kind"] = what
            if target is not None:
                f[name].attrs["target"] = target
            if classify:
                f.create_dataset(name.replace("outputs", "labels"), data=values.argmax(axis=1))
            written.append(f"{name} {values.shape} {what}" + (f" of {target}" if target else "")
                           + (f", {name.replace('outputs', 'labels')} (argmax)" if classify else ""))
    print(f"wrote {out}: " + "; ".join(written))


def addParser(sub):
    r = sub.add_parser("predict", help="write a saved model's class probabilities for an HDF5 dataset",
                       description="Rebuild the network from the model file alone and write its outputs for every "
                                   "sample: 'outputs', the class probabilities (softmax; --logits for the raw "
                                   "scores), and 'labels', the most likely class. A model trained on several targets "
                                   "writes 'outputs', 'outputs_1', ... one per head, with 'labels', 'labels_1', ... "
                                   "for its classifier heads (a regression head's values as they are).")
    r.add_argument("model", help="model file written by training (Module.save)")
    r.add_argument("data", help="HDF5 file holding the inputs")
    r.add_argument("--dataset", default="data", help="name of the input dataset in the file")
    r.add_argument("--out", help="output HDF5 file (default: DATA.pred.h5) with 'outputs' and argmax 'labels'")
    r.add_argument("--logits", action="store_true", help="write the raw scores instead of probabilities")
    r.add_argument("--batchsize", type=positiveInt, default=256, help="samples per forward pass")
    r.add_argument("--macrobatch", type=macroBatchArg, default=10000, help="as for train (a count, or 'auto')")
    r.set_defaults(run=predict)
    return r
