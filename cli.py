"""The ``macrobatch`` command: train a model on an HDF5 dataset, or predict with a saved one."""
import argparse
import sys
from pathlib import Path

import numpy
from . import models
from .costs.crossentropy import CrossEntropy
from .datasets.digits import digitsH5
from .datasets.inspect import classHistogram, formatReport, inspectH5
from .engine import backend, serialize, setSeed
from .engine.communicator import abortOnError, worldCommunicator
from .engine.errors import MacrobatchError
from .handlers import Calculator
from .handlers.callbacks import CSVLogger, CurvePlot, EarlyStopping, ModelCheckpoint, ProgressBar, latestCheckpoint
from .handlers.callbacks.modelcheckpoint import checkpointPosition
from .handlers.fit import Fit
from .modules.module import loadModel, savedInputShape
from .modules.summary import estimate, formatSummary, inputShapeFor, parseShape, summary
from .optimizers.adagrad import AdaGrad
from .optimizers.adam import Adam
from .optimizers.adamw import AdamW
from .optimizers.clipbyglobalnorm import ClipByGlobalNorm
from .optimizers.gradientaccumulation import GradientAccumulation
from .optimizers.momentumsgd import MomentumSGD
from .optimizers.nesterovsgd import NesterovSGD
from .optimizers.rmsprop import RMSProp
from .optimizers.schedules import CosineDecay, ReduceOnPlateau, StepDecay
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


def makeSchedule(name, optimizer, epochs, validated):
    """The learning-rate schedule --schedule names, or None."""
    if name == "cosine":
        return CosineDecay(optimizer, totalSteps=epochs, per="epoch")
    if name == "step":
        return StepDecay(optimizer, stepSize=max(1, epochs // 3))
    if name == "plateau":
        return ReduceOnPlateau(optimizer, monitor="val_loss" if validated else "loss", patience=2)
    return None


def trainCallbacks(args, validated, lead=True):
    """The callbacks the train command's options ask for; in a data-parallel job those that write
    (bar, checkpoints, logs, curve) only for the lead process, rank 0."""
    if not lead:
        return [EarlyStopping("val_loss" if validated else "loss", patience=args.patience)] if args.patience else []
    callbacks = [ProgressBar(bar=not args.no_progress)]
    if args.checkpoints:
        callbacks.append(ModelCheckpoint(args.checkpoints, keepLast=3, monitor="val_loss" if validated else None,
                                         everyMacroBatches=args.checkpoint_macrobatches))
    if args.csv:
        callbacks.append(CSVLogger(args.csv))
    if args.patience:
        callbacks.append(EarlyStopping("val_loss" if validated else "loss", patience=args.patience))
    if args.curve != "none":
        try:
            callbacks.append(CurvePlot(args.curve or Path(args.out).with_name("curve.png")))
        except ImportError as e:
            print(f"no training curve: {e}")
    return callbacks


def checkOutputs(args):
    """Every folder training will write into, proven writable before any data is read (nothing is
    created yet: a run that fails on its data leaves no empty folders)."""
    serialize.checkWritable(Path(args.out).parent, "--out folder")
    if args.checkpoints:
        serialize.checkWritable(args.checkpoints, "--checkpoints")
    if args.csv:
        serialize.checkWritable(Path(args.csv).parent, "--csv folder")
    if args.curve and args.curve != "none":
        serialize.checkWritable(Path(args.curve).parent, "--curve folder")


def interruptNote(args, fit):
    """What Ctrl-C left behind and how to go on."""
    where = (f"stopped in epoch {fit.epoch + 1} of {args.epochs}" if fit.epoch < args.epochs
             else f"stopped after the last epoch, {args.epochs}")
    latest = latestCheckpoint(args.checkpoints) if args.checkpoints else None
    if latest is None:
        how = ("no checkpoint was written yet" if args.checkpoints else
               "no checkpoints were written (pass --checkpoints DIR to make a run resumable)")
        return f"{where}; {how}, {args.out} not saved"
    done, macroBatches = checkpointPosition(latest)
    held = f"{done} completed epoch(s)" + (f" and {macroBatches} macrobatch(es) of the next" if macroBatches else "")
    start = f"macrobatch {macroBatches + 1} of epoch {done + 1}" if macroBatches else f"epoch {done + 1}"
    return (f"{where}; {latest} holds {held}, {args.out} not saved: run the same command with --resume to "
            f"continue from {start}")


def train(args):
    """Train a model; under mpiexec with several processes, data-parallel (rank 0 writes and prints, a
    failing process stops the job)."""
    comm = worldCommunicator()
    with abortOnError(comm):
        trainOn(args, comm)


def trainOn(args, comm):
    lead = comm is None or comm.rank == 0
    say = print if lead else lambda *args: None
    setSeed(args.seed)
    if lead:  # the only writer; two processes checking one new folder would remove it under each other
        checkOutputs(args)
    path = Path(args.data) if args.data else digitsH5()
    with serialize.openH5(path) as f:
        data, labels = serialize.getDataset(f, "data"), serialize.getDataset(f, "labels")
        val = [f[k] for k in ("val_data", "val_labels") if k in f]
        test = [f[k] for k in ("test_data", "test_labels") if k in f]
        classes = max(countClasses(ary) for ary in (labels, *val[1:], *test[1:]))
        model = buildModel(args.model, data.shape[1:], classes)
        optimizer = optimizers[args.optimizer]() if args.lr is None else optimizers[args.optimizer](learnRate=args.lr)
        if args.clip_norm:
            optimizer.addHook(ClipByGlobalNorm(args.clip_norm))
        if args.accumulate > 1:
            optimizer = GradientAccumulation(optimizer, args.accumulate)
        optimizer.setupOn(model)
        processes = "" if comm is None else f", {comm.size} processes"
        say(f"macrobatch {backend.name}: {path} ({data.shape[0]} samples of {data.shape[1:]}, {classes} classes), "
            f"{args.model} with {model.paramCount()} parameters, {args.optimizer}, batch {args.batchsize}{processes}")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        fit = Fit(model, CrossEntropy(), optimizer, batchsize=args.batchsize, macroBatchSize=args.macrobatch,
                  callbacks=trainCallbacks(args, bool(val), lead), seed=args.seed, comm=comm,
                  syncBatchNorm=args.sync_batchnorm,
                  reduceDtype=None if args.reduce_dtype == "float32" else args.reduce_dtype,
                  schedule=makeSchedule(args.schedule, optimizer, args.epochs, bool(val)))
        if args.resume:
            latest = latestCheckpoint(args.checkpoints or "")
            if latest is None:
                raise MacrobatchError(f"--resume: no checkpoint in {args.checkpoints!r} (pass --checkpoints DIR)")
            fit.resume(latest)
            inside = f" and {fit.position} macrobatch(es) of epoch {fit.epoch + 1}" if fit.position else ""
            say(f"resumed from {latest} after epoch {fit.epoch}{inside}")
        try:
            fit.run(data, labels, args.epochs, *val)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(interruptNote(args, fit)) from None
        if lead:
            model.save(args.out, inputShape=data.shape[1:])
        say(f"saved {args.out}")
        final, split = (test, "test") if test else (val, "validation") if val else ([data, labels], "training")
        validator = fit.validator
        validator.validateFromHost(*final, macroBatchSize=args.macrobatch)
        say(f"{split} accuracy {validator.metrics['accuracy']:.4f} (loss {validator.metrics['error']:.4f})")


def inspectData(args):
    info = inspectH5(args.data, sampleSize=args.sample, labels=args.labels)
    print(formatReport(info), end="")
    if args.histogram:
        classHistogram(info, args.histogram)
        print(f"wrote {args.histogram}")


def summarize(args):
    model = loadModel(args.model)
    shape = inputShapeFor(model, args.shape or savedInputShape(args.model))
    speed = estimate(model, shape, args.batchsize, runs=args.runs) if args.runs else None
    print(formatSummary(summary(model, shape, args.batchsize), speed))


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


def macroBatchArg(text):
    """--macrobatch: a count of samples, or 'auto'."""
    return text if text == "auto" else int(text)


def parser():
    p = argparse.ArgumentParser(prog="macrobatch", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a classifier with trainFromHost (default: a CNN on the bundled digits)")
    t.add_argument("--data", help="HDF5 file with datasets 'data' and integer 'labels' (optional 'val_data'/'val_labels',"
                                  " 'test_data'/'test_labels'); default: the bundled digits")
    t.add_argument("--model", choices=["cnn", "mlp"], default="cnn", help="cnn for (N, C, H, W) images, mlp for any")
    t.add_argument("--epochs", type=int, default=15)
    t.add_argument("--batchsize", type=int, default=32)
    t.add_argument("--macrobatch", type=macroBatchArg, default=10000,
                   help="samples per macrobatch moved to the device at once, or 'auto': the most that fit in free "
                        "device memory (RAM on the CPU) beside the model's work for one batch")
    t.add_argument("--optimizer", choices=sorted(optimizers), default="adam")
    t.add_argument("--lr", type=float, help="learning rate (default: the optimizer's)")
    t.add_argument("--clip-norm", type=float, default=0.0, help="clip gradients to this global L2 norm")
    t.add_argument("--accumulate", type=int, default=1, help="update once every K batches, on their mean gradient")
    t.add_argument("--schedule", choices=["none", "cosine", "step", "plateau"], default="none",
                   help="learning-rate schedule: cosine decay over --epochs, step (x0.1 every third of --epochs) "
                        "or reduce-on-plateau of the validation loss; resume with the same --epochs")
    t.add_argument("--out", default="runs/model.h5", help="where to save the trained model")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoints", metavar="DIR", help="write a resumable checkpoint every epoch into DIR (last 3 "
                                                       "kept, best.h5 the best model by validation loss)")
    t.add_argument("--checkpoint-macrobatches", type=int, metavar="N",
                   help="also checkpoint every N macrobatches inside an epoch (long epochs)")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoints")
    t.add_argument("--csv", metavar="FILE", help="log every epoch's figures to a CSV file")
    t.add_argument("--patience", type=int, default=0, help="stop after this many epochs without improvement")
    t.add_argument("--curve", help="training-curve PNG (default: curve.png beside --out; needs macrobatch[plot]; "
                                   "'none': off)")
    t.add_argument("--sync-batchnorm", action="store_true",
                   help="under mpiexec: BatchNorm statistics over all processes' batches (default: per process)")
    t.add_argument("--reduce-dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="under mpiexec: the dtype gradients are summed in across processes")
    t.add_argument("--no-progress", action="store_true", help="no progress bar, only a line per epoch")
    t.set_defaults(run=train)
    r = sub.add_parser("predict", help="write a saved model's outputs for an HDF5 dataset")
    r.add_argument("model", help="model file written by training (Module.save)")
    r.add_argument("data", help="HDF5 file holding the inputs")
    r.add_argument("--dataset", default="data", help="name of the input dataset in the file")
    r.add_argument("--out", help="output HDF5 file (default: DATA.pred.h5) with 'outputs' and argmax 'labels'")
    r.add_argument("--batchsize", type=int, default=256)
    r.add_argument("--macrobatch", type=macroBatchArg, default=10000, help="as for train (a count, or 'auto')")
    r.set_defaults(run=predict)
    m = sub.add_parser("summary", help="layers, parameters, memory at float32/16/int8 and prediction latency")
    m.add_argument("model", help="model file written by training (Module.save)")
    m.add_argument("--shape", type=parseShape, help="per-sample input shape, e.g. 1,8,8 (default: recorded in the "
                                                     "file, or inferred from a first Linear layer)")
    m.add_argument("--batchsize", type=int, default=1)
    m.add_argument("--runs", type=int, default=500, help="timed predictions for the latency (0: none)")
    m.set_defaults(run=summarize)
    i = sub.add_parser("inspect", help="describe every dataset of an HDF5 file: layout, statistics, NaN/Inf, "
                                       "classes, duplicate rows")
    i.add_argument("data", help="HDF5 file")
    i.add_argument("--sample", type=int, default=10000, help="rows sampled (contiguous blocks) to count duplicates")
    i.add_argument("--labels", nargs="+", help="integer datasets to count per class (default: names ending in 'labels')")
    i.add_argument("--histogram", metavar="OUT.png", help="bar chart of the class counts (needs macrobatch[plot])")
    i.set_defaults(run=inspectData)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (MacrobatchError, FileNotFoundError, ValueError, OSError, ImportError) as e:
        print(f"macrobatch: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"macrobatch: interrupted{': ' if str(e) else ''}{e}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a Ctrl-C
    return 0


if __name__ == "__main__":
    sys.exit(main())
