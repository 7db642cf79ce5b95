"""The ``macrobatch`` command: train a model on an HDF5 dataset, or predict with a saved one."""
import argparse
import sys
import time
from pathlib import Path

import numpy
from tqdm import tqdm

from . import models
from .costs.crossentropy import CrossEntropy
from .datasets.digits import digitsH5
from .engine import backend, serialize, setSeed
from .engine.errors import MacrobatchError
from .handlers import Calculator, Trainer, Validator
from .modules.module import loadModel
from .optimizers.adagrad import AdaGrad
from .optimizers.adam import Adam
from .optimizers.adamw import AdamW
from .optimizers.momentumsgd import MomentumSGD
from .optimizers.nesterovsgd import NesterovSGD
from .optimizers.rmsprop import RMSProp
from .optimizers.sgd import SGD

optimizers = {"sgd": SGD, "momentum": MomentumSGD, "nesterov": NesterovSGD, "adam": Adam, "adamw": AdamW,
              "rmsprop": RMSProp, "adagrad": AdaGrad}


def countClasses(labels, chunk=1 << 20):
    """Number of classes (max label + 1), reading the labels in bounded chunks."""
    return 1 + max(int(numpy.max(labels[i:i + chunk])) for i in range(0, labels.shape[0], chunk))


def buildModel(name, inshape, classes):
    if name == "cnn":
        if len(inshape) != 3:
            raise MacrobatchError(f"--model cnn needs image data of shape (N, C, H, W); got samples of shape {inshape}"
                                  "; use --model mlp")
        return models.smallCNN(inshape, classes)
    return models.mlp(int(numpy.prod(inshape)), classes)


class Progress:
    """A tqdm bar over one pass: advances per batch, shows the running loss once per macrobatch
    (asking the cost for a number synchronises the device, so not every batch)."""

    def __init__(self, total, description, enabled):
        self.bar = tqdm(total=total, desc=description, unit="sample", unit_scale=True, leave=False,
                        disable=not enabled, dynamic_ncols=True)

    def onBatchFinish(self, handler):
        self.bar.update(handler.state["size"])

    def onMacroBatchFinish(self, handler):
        self.bar.set_postfix(loss=f"{handler.cost.getError():.4f}")

    def close(self):
        self.bar.close()


def train(args):
    setSeed(args.seed)
    path = Path(args.data) if args.data else digitsH5()
    with serialize.openH5(path) as f:
        data, labels = serialize.getDataset(f, "data"), serialize.getDataset(f, "labels")
        val = [f[k] for k in ("val_data", "val_labels") if k in f]
        test = [f[k] for k in ("test_data", "test_labels") if k in f]
        classes = max(countClasses(ary) for ary in (labels, *val[1:], *test[1:]))
        model = buildModel(args.model, data.shape[1:], classes)
        optimizer = optimizers[args.optimizer]() if args.lr is None else optimizers[args.optimizer](learnRate=args.lr)
        optimizer.setupOn(model)
        cost = CrossEntropy()
        trainer = Trainer(model, cost, optimizer, batchsize=args.batchsize)
        validator = Validator(model, CrossEntropy(), batchsize=max(args.batchsize, 256))
        print(f"macrobatch {backend.name}: {path} ({data.shape[0]} samples of {data.shape[1:]}, {classes} classes), "
              f"{args.model} with {model.paramCount()} parameters, {args.optimizer}, batch {args.batchsize}")
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            progress = Progress(data.shape[0], f"epoch {epoch}/{args.epochs}", not args.no_progress)
            trainer.onBatchFinish = progress.onBatchFinish
            trainer.trainFromHost(data, labels, macroBatchSize=args.macrobatch,
                                  onMacroBatchFinish=progress.onMacroBatchFinish)
            progress.close()
            line = f"epoch {epoch:3d}/{args.epochs}  train loss {cost.getError():.4f} acc {cost.getMetrics()['accuracy']:.4f}"
            if val:
                validator.validateFromHost(*val, macroBatchSize=args.macrobatch)
                line += f" | val loss {validator.metrics['error']:.4f} acc {validator.metrics['accuracy']:.4f}"
            print(f"{line} | {time.perf_counter() - start:.2f}s", flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        model.save(args.out)
        print(f"saved {args.out}")
        final, split = (test, "test") if test else (val, "validation") if val else ([data, labels], "training")
        validator.validateFromHost(*final, macroBatchSize=args.macrobatch)
        print(f"{split} accuracy {validator.metrics['accuracy']:.4f} (loss {validator.metrics['error']:.4f})")


def predict(args):
    model = loadModel(args.model)
    out = Path(args.out) if args.out else Path(args.data).with_suffix(".pred.h5")
    with serialize.openH5(args.data) as f:
        outputs = Calculator(model, batchsize=args.batchsize).calcFromHost(
            serialize.getDataset(f, args.dataset), macroBatchSize=args.macrobatch)
    with serialize.atomicH5(out) as f:
        f.create_dataset("outputs", data=outputs)
        if outputs.ndim == 2:
            f.create_dataset("labels", data=outputs.argmax(axis=1))
    print(f"wrote {out}: outputs {outputs.shape}" + (", labels (argmax)" if outputs.ndim == 2 else ""))


def parser():
    p = argparse.ArgumentParser(prog="macrobatch", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a classifier with trainFromHost (default: a CNN on the bundled digits)")
    t.add_argument("--data", help="HDF5 file with datasets 'data' and integer 'labels' (optional 'val_data'/'val_labels',"
                                  " 'test_data'/'test_labels'); default: the bundled digits")
    t.add_argument("--model", choices=["cnn", "mlp"], default="cnn", help="cnn for (N, C, H, W) images, mlp for any")
    t.add_argument("--epochs", type=int, default=15)
    t.add_argument("--batchsize", type=int, default=32)
    t.add_argument("--macrobatch", type=int, default=10000, help="samples per macrobatch moved to the device at once")
    t.add_argument("--optimizer", choices=sorted(optimizers), default="adam")
    t.add_argument("--lr", type=float, help="learning rate (default: the optimizer's)")
    t.add_argument("--out", default="runs/model.h5", help="where to save the trained model")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(run=train)
    r = sub.add_parser("predict", help="write a saved model's outputs for an HDF5 dataset")
    r.add_argument("model", help="model file written by training (Module.save)")
    r.add_argument("data", help="HDF5 file holding the inputs")
    r.add_argument("--dataset", default="data", help="name of the input dataset in the file")
    r.add_argument("--out", help="output HDF5 file (default: DATA.pred.h5) with 'outputs' and argmax 'labels'")
    r.add_argument("--batchsize", type=int, default=256)
    r.add_argument("--macrobatch", type=int, default=10000)
    r.set_defaults(run=predict)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (MacrobatchError, FileNotFoundError, ValueError, OSError) as e:
        print(f"macrobatch: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
