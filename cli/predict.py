"""macrobatch predict: a saved model's class probabilities (or raw scores) for an HDF5 dataset."""
from pathlib import Path

from ..engine import serialize
from ..engine.errors import ShapeError
from ..handlers import fit
from ..modules.module import loadModel, savedInputShape
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
    with serialize.openH5(args.data) as f:
        data = serialize.getDataset(f, args.dataset)
        checkInputShape(args.model, data, args.dataset)
        outputs = fit.predict(model, data, batchsize=args.batchsize, macroBatchSize=args.macrobatch,
                              softmax=not args.logits)
    classify = outputs.ndim == 2
    with serialize.atomicH5(out) as f:
        f.create_dataset("outputs", data=outputs)
        f["outputs"].attrs["kind"] = "logits" if args.logits else "probabilities"
        if classify:
            f.create_dataset("labels", data=outputs.argmax(axis=1))
    kind = "raw scores (logits)" if args.logits else "class probabilities (softmax)"
    print(f"wrote {out}: outputs {outputs.shape}, {kind}" + (", labels (argmax)" if classify else ""))


def addParser(sub):
    r = sub.add_parser("predict", help="write a saved model's class probabilities for an HDF5 dataset",
                       description="Rebuild the network from the model file alone and write its outputs for every "
                                   "sample: 'outputs', the class probabilities (softmax; --logits for the raw "
                                   "scores), and 'labels', the most likely class.")
    r.add_argument("model", help="model file written by training (Module.save)")
    r.add_argument("data", help="HDF5 file holding the inputs")
    r.add_argument("--dataset", default="data", help="name of the input dataset in the file")
    r.add_argument("--out", help="output HDF5 file (default: DATA.pred.h5) with 'outputs' and argmax 'labels'")
    r.add_argument("--logits", action="store_true", help="write the raw scores instead of probabilities")
    r.add_argument("--batchsize", type=positiveInt, default=256, help="samples per forward pass")
    r.add_argument("--macrobatch", type=macroBatchArg, default=10000, help="as for train (a count, or 'auto')")
    r.set_defaults(run=predict)
    return r
