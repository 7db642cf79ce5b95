"""macrobatch train: a classifier (or a head per target, for several) trained with trainFromHost on an HDF5
file, resumable from checkpoints."""
from pathlib import Path

import numpy

from .. import models
from ..costs.crossentropy import CrossEntropy
from ..costs.mse import MSE
from ..costs.multi import Multi
from ..datasets.digits import digitsH5
from ..engine import backend, serialize, setSeed
from ..engine.communicator import abortOnError, worldCommunicator
from ..engine.dtype import precisionDtype, precisions
from ..engine.errors import MacrobatchError
from ..handlers.callbacks import CSVLogger, CurvePlot, EarlyStopping, ModelCheckpoint, ProgressBar, latestCheckpoint
from ..handlers.callbacks.modelcheckpoint import checkpointPosition
from ..handlers.fit import Fit
from ..handlers.handler import spanRange
from ..optimizers.adagrad import AdaGrad
from ..optimizers.adam import Adam
from ..optimizers.adamw import AdamW
from ..optimizers.clipbyglobalnorm import ClipByGlobalNorm
from ..optimizers.gradientaccumulation import GradientAccumulation
from ..optimizers.momentumsgd import MomentumSGD
from ..optimizers.nesterovsgd import NesterovSGD
from ..optimizers.rmsprop import RMSProp
from ..optimizers.schedules import CosineDecay, ReduceOnPlateau, StepDecay
from ..optimizers.sgd import SGD
from ..privacy.accountant import noiseMultiplierFor
from ..privacy.differentialprivacy import DifferentialPrivacy
from .arguments import fraction, macroBatchArg, nonNegativeInt, positiveInt
from .datachecks import checkImages, checkShapes
from .runconfig import RunConfig, checkTargets, resumeConfig
from .targets import describeHeads, readSplits, targetHeads, targetNames

optimizers = {"sgd": SGD, "momentum": MomentumSGD, "nesterov": NesterovSGD, "adam": Adam, "adamw": AdamW,
              "rmsprop": RMSProp, "adagrad": AdaGrad}


def buildModel(name, inshape, heads):
    """The --model network: a classifier for one target; for several, its trunk with a head per target."""
    if name == "cnn":
        checkImages(inshape)
    if len(heads) == 1:
        classes = heads[0][1]
        return models.smallCNN(inshape, classes) if name == "cnn" else models.mlp(int(numpy.prod(inshape)), classes)
    trunk, features = models.cnnTrunk(inshape) if name == "cnn" else models.mlpTrunk(int(numpy.prod(inshape)))
    return models.multiHead(trunk, features, heads)


def buildCost(heads):
    """CrossEntropy for one target; for several, Multi of CrossEntropy per class target, MSE per float one."""
    if len(heads) == 1:
        return CrossEntropy()
    return Multi(*(CrossEntropy() if classes else MSE() for _, classes, _ in heads))


def dataAndTarget(split):
    """[data, target] of a split: the one target array, or the list of them for several targets."""
    return [split[0], split[1] if len(split) == 2 else split[1:]]


def figures(metrics, heads):
    """The final validation's figures: accuracy and loss, and each head's for several targets."""
    if len(heads) == 1:
        return f"accuracy {metrics['accuracy']:.4f} (loss {metrics['error']:.4f})"
    each = [f"{name} accuracy {metrics[f'{i}.accuracy']:.4f} (loss {metrics[f'{i}.error']:.4f})" if classes
            else f"{name} mse {metrics[f'{i}.error']:.4g}" for i, (name, classes, _) in enumerate(heads)]
    return f"loss {metrics['error']:.4f}: " + ", ".join(each)


def makeSchedule(name, optimizer, epochs, validated):
    """The learning-rate schedule --schedule names, or None."""
    if name == "cosine":
        return CosineDecay(optimizer, totalSteps=epochs, per="epoch")
    if name == "step":
        return StepDecay(optimizer, stepSize=max(1, epochs // 3))
    if name == "plateau":
        return ReduceOnPlateau(optimizer, monitor="val_loss" if validated else "loss", patience=2)
    return None


def curvePath(args):
    return None if args.curve == "none" else args.curve or str(Path(args.out).with_name("curve.png"))


def trainCallbacks(args, validated, lead=True):
    """The callbacks the train command's options ask for; in a data-parallel job those that write
    (bar, checkpoints, logs, curve) only for the lead process, rank 0. RunConfig comes first, so a
    checkpoint always holds the run's options in the same place."""
    monitor = "val_loss" if validated else "loss"
    if not lead:
        return [RunConfig(args)] + ([EarlyStopping(monitor, patience=args.patience)] if args.patience else [])
    callbacks = [RunConfig(args), ProgressBar(bar=False if args.no_progress else "auto")]
    if args.checkpoints:
        callbacks.append(ModelCheckpoint(args.checkpoints, keepLast=3, monitor="val_loss" if validated else None,
                                         everyMacroBatches=args.checkpoint_macrobatches))
    if args.csv:
        callbacks.append(CSVLogger(args.csv))
    if args.patience:
        callbacks.append(EarlyStopping(monitor, patience=args.patience))
    if curvePath(args):
        try:
            callbacks.append(CurvePlot(curvePath(args)))
        except ImportError as e:
            print(f"no training curve: {e}")
    return callbacks


def scalingNote(rule):
    """What float16 loss scaling did over the run: the steps it skipped, and the scale it ended at."""
    state = rule.lossScaler.getState()
    return (f"float16 loss scaling: {state['skippedSteps']} of {rule.steps} steps skipped (gradients overflowed), "
            f"loss scale now {state['scale']:g}")


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


def checkPrivacy(args, comm=None):
    """Refuse, before any data is read, what DP-SGD (--dp-clip) cannot train with (comm: the data-parallel job's
    communicator, or None)."""
    private = args.dp_clip or args.dp_noise is not None or args.dp_epsilon is not None
    if not private:
        return
    if not args.dp_clip:
        raise MacrobatchError("--dp-noise and --dp-epsilon need --dp-clip C, the norm each sample's gradient is "
                              "clipped to")
    if args.dp_noise is None and args.dp_epsilon is None:
        raise MacrobatchError("--dp-clip needs --dp-noise SIGMA (the noise multiplier) or --dp-epsilon E (the "
                              "noise that reaches epsilon E at --dp-delta after --epochs)")
    if args.model == "cnn":
        raise MacrobatchError("--dp-clip: the cnn model has BatchNorm, which mixes the samples of a batch, so "
                              "DP-SGD's per-sample gradients are undefined; use --model mlp")
    if args.dp_noise is None and args.macrobatch == "auto":
        raise MacrobatchError("--dp-epsilon needs a number --macrobatch (the sample rate depends on it), not auto")
    if args.dp_noise is None and comm is not None:
        raise MacrobatchError("--dp-epsilon is not solved for a data-parallel job (its rate and steps depend on the "
                              "shards); give --dp-noise SIGMA: the run prints the job's epsilon")


def plannedNoise(args, samples):
    """The noise multiplier --dp-epsilon asks for: the one reaching it at --dp-delta after --epochs epochs of
    Poisson logical batches (one per step, --accumulate batches each) at sample rate accumulate * batchsize /
    min(macrobatch, samples), ceil(m / (accumulate * batchsize)) steps per macrobatch of m samples."""
    logical = args.accumulate * args.batchsize
    spans = spanRange(0, samples, args.macrobatch)
    steps = args.epochs * sum(-(-(stop - start) // logical) for start, stop in spans)
    sampleRate = min(1.0, logical / min(args.macrobatch, samples))
    return noiseMultiplierFor(args.dp_epsilon, steps, sampleRate, args.dp_delta)


def findResume(args):
    """The checkpoint --resume continues from, with its options taken into args; checked before any data
    is read. Returns (path, notes on the options changed) or (None, [])."""
    if not args.resume:
        return None, []
    if not args.checkpoints:
        raise MacrobatchError("--resume needs --checkpoints DIR, the folder the run wrote its checkpoints into")
    latest = latestCheckpoint(args.checkpoints)
    if latest is None:
        raise MacrobatchError(f"--resume: no checkpoint in {args.checkpoints!r}")
    return latest, resumeConfig(args, args.given, latest)


def train(args):
    """Train a model; under mpiexec with several processes, data-parallel (rank 0 writes and prints, a
    failing process stops the job)."""
    comm = worldCommunicator()
    with abortOnError(comm):
        trainOn(args, comm)


def trainOn(args, comm):
    lead = comm is None or comm.rank == 0
    say = print if lead else lambda *args: None
    latest, resumeNotes = findResume(args)
    checkPrivacy(args, comm)
    precisionDtype(args.precision, "--precision")  # bfloat16 without ml_dtypes: refused before any data is read
    setSeed(args.seed)
    if lead:  # the only writer; two processes checking one new folder would remove it under each other
        checkOutputs(args)
    path = Path(args.data) if args.data else digitsH5()
    with serialize.openH5(path) as f:
        data = serialize.getDataset(f, "data")
        names = targetNames(f, args.labels)
        checkTargets(args, names, latest)
        found = readSplits(f, data, names, args.val_split)
        data = found["training"][0]
        checkShapes(data, {f"{prefix}_data": split[0] for prefix, split in found.items() if prefix != "training"})
        heads, warnings = targetHeads(names, found)
        model = buildModel(args.model, data.shape[1:], heads)
        rule = optimizers[args.optimizer]() if args.lr is None else optimizers[args.optimizer](learnRate=args.lr)
        if args.clip_norm:
            rule.addHook(ClipByGlobalNorm(args.clip_norm))
        if args.dp_clip and args.dp_noise is None:  # solved once: recorded, a resumed run keeps it
            args.dp_noise = plannedNoise(args, data.shape[0])
            say(f"--dp-epsilon {args.dp_epsilon}: noise multiplier {args.dp_noise:.4g}")
        optimizer = DifferentialPrivacy(rule, args.dp_clip, args.dp_noise) if args.dp_clip else rule
        if args.accumulate > 1:  # outside the privacy wrapper: the noise is added once per accumulated step
            optimizer = GradientAccumulation(optimizer, args.accumulate)
        optimizer.setupOn(model, precision=args.precision)
        processes = "" if comm is None else f", {comm.size} processes"
        held = f"{heads[0][1]} classes" if len(heads) == 1 else f"targets {describeHeads(heads)}"
        say(f"macrobatch {backend.name}: {path} ({data.shape[0]} samples of {data.shape[1:]}, {held}), "
            f"{args.model} with {model.paramCount()} parameters, {args.optimizer}, batch {args.batchsize}{processes}"
            + ("" if args.precision == "float32" else f", {args.precision} mixed precision"))
        for note in warnings:
            say(f"warning: {note}")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        val, test = (dataAndTarget(found[k]) if k in found else [] for k in ("val", "test"))
        callbacks = trainCallbacks(args, bool(val), lead)
        fit = Fit(model, buildCost(heads), optimizer, batchsize=args.batchsize, macroBatchSize=args.macrobatch,
                  callbacks=callbacks, seed=args.seed, comm=comm, syncBatchNorm=args.sync_batchnorm,
                  reduceDtype=None if args.reduce_dtype == "float32" else args.reduce_dtype, precision=args.precision,
                  privacyDelta=args.dp_delta,
                  schedule=makeSchedule(args.schedule, optimizer, args.epochs, bool(val)))
        if latest is not None:
            fit.resume(latest)
            inside = f" and {fit.position} macrobatch(es) of epoch {fit.epoch + 1}" if fit.position else ""
            say(f"resumed from {latest} after epoch {fit.epoch}{inside}, with the run's options")
            for note in resumeNotes:
                say(f"resume: {note}")
            if fit.epoch >= args.epochs:
                say(f"the run has its {fit.epoch} epochs already; give --epochs N above {fit.epoch} to train more")
        try:
            fit.run(*dataAndTarget(found["training"]), args.epochs, *val)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(interruptNote(args, fit)) from None
        final, split = ((test, "test") if test else (val, "validation") if val else
                        (dataAndTarget(found["training"]), "training"))
        validator = fit.validator
        with optimizer.masterWeights():  # the float32 weights: the saved model, and what predict computes with
            if lead:
                model.save(args.out, inputShape=data.shape[1:])
            validator.validateFromHost(*final, macroBatchSize=args.macrobatch)
        say(f"{split} {figures(validator.metrics, heads)}")
        if rule.lossScaler is not None:
            say(scalingNote(rule))
        if fit.accountant is not None:
            say(f"privacy: epsilon {fit.accountant.epsilon(args.dp_delta):.4g} at delta {args.dp_delta:g} after "
                f"{fit.accountant.steps} steps (noise multiplier {args.dp_noise:.4g}, clip {args.dp_clip:g})")
        say(f"saved the model: {args.out}")
        written = [("training curve", c.path) for c in callbacks if isinstance(c, CurvePlot)] + \
            [("per-epoch log", args.csv)] * bool(args.csv) + [("checkpoints", args.checkpoints)] * bool(args.checkpoints)
        for what, where in written:
            say(f"saved the {what}: {where}")


def addParser(sub):
    t = sub.add_parser("train", help="train a classifier on an HDF5 file (default: a CNN on the bundled digits)",
                       description="Train a classifier with trainFromHost: the data is read from the HDF5 file in "
                                   "contiguous macrobatches, so it may be larger than memory. A file of several "
                                   "targets trains a head per target (classes or values) on one trunk.",
                       allow_abbrev=False)
    t.add_argument("--data", help="HDF5 file with datasets 'data' and integer 'labels' (optional 'val_data'/"
                                  "'val_labels', 'test_data'/'test_labels'; macrobatch convert makes one); "
                                  "default: the bundled digits. Several targets: 'labels_1', 'labels_2', ... "
                                  "beside 'labels' (and 'val_labels_1', ...) train one head each on a shared trunk")
    t.add_argument("--labels", metavar="NAMES",
                   help="the target datasets, comma-separated (e.g. labels,age; default: labels, labels_1, ... as "
                        "the file holds them); integer ones are classes, float ones values (a regression head)")
    t.add_argument("--model", choices=["cnn", "mlp"], default="cnn", help="cnn for (N, C, H, W) images, mlp for any")
    t.add_argument("--epochs", type=positiveInt, default=15, help="epochs to train (in all, counting a resumed run's)")
    t.add_argument("--batchsize", type=positiveInt, default=32, help="samples per training step")
    t.add_argument("--macrobatch", type=macroBatchArg, default=10000,
                   help="samples per macrobatch moved to the device at once, or 'auto': the most that fit in free "
                        "device memory (RAM on the CPU) beside the model's work for one batch")
    t.add_argument("--optimizer", choices=sorted(optimizers), default="adam", help="the update rule")
    t.add_argument("--lr", type=float, help="learning rate (default: the optimizer's own, 1e-3 for adam)")
    t.add_argument("--clip-norm", type=float, default=0.0, help="clip gradients to this global L2 norm (0: off)")
    t.add_argument("--accumulate", type=positiveInt, default=1,
                   help="update once every K batches, on their mean gradient (with --dp-clip: one Poisson batch of "
                        "K * batchsize samples on average per update, cut into K)")
    t.add_argument("--schedule", choices=["none", "cosine", "step", "plateau"], default="none",
                   help="learning-rate schedule: cosine decay over --epochs, step (x0.1 every third of --epochs) "
                        "or reduce-on-plateau of the validation loss")
    t.add_argument("--val-split", type=fraction, metavar="FRACTION",
                   help="validate on the file's last FRACTION of samples, for a file with no 'val_data' "
                        "(shuffle a sorted file first: macrobatch convert --shuffle)")
    t.add_argument("--out", default="runs/model.h5", help="where to save the trained model")
    t.add_argument("--seed", type=int, default=0, help="seed of every random source of the run")
    t.add_argument("--checkpoints", metavar="DIR", help="write a resumable checkpoint every epoch into DIR (last 3 "
                                                       "kept, best.h5 the best model by validation loss)")
    t.add_argument("--checkpoint-macrobatches", type=positiveInt, metavar="N",
                   help="also checkpoint every N macrobatches inside an epoch (long epochs)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run whose newest checkpoint is in --checkpoints, with its options (a "
                        "contradicting option is refused; --epochs, --out, --curve may change)")
    t.add_argument("--csv", metavar="FILE", help="log every epoch's figures to a CSV file")
    t.add_argument("--patience", type=nonNegativeInt, default=0,
                   help="stop after this many epochs without improvement (0: never)")
    t.add_argument("--curve", help="training-curve PNG (default: curve.png beside --out; needs macrobatch[plot]; "
                                   "'none': off)")
    t.add_argument("--precision", choices=precisions, default="float32",
                   help="what forward and backward compute in, with float32 master weights either way: float16 with "
                        "dynamic loss scaling (overflowing steps skipped), bfloat16 unscaled (needs ml_dtypes; CPU "
                        "only for now); the saved model is float32 and the final accuracy is measured in float32, "
                        "the per-epoch validation in this precision")
    t.add_argument("--sync-batchnorm", action="store_true",
                   help="under mpiexec: BatchNorm statistics over all processes' batches (default: per process)")
    t.add_argument("--reduce-dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="under mpiexec: the dtype gradients are summed in across processes")
    t.add_argument("--dp-clip", type=float, default=0.0, metavar="C",
                   help="differentially private training (DP-SGD, Poisson-sampled batches): clip each sample's "
                        "gradient to norm C (0: off); needs --dp-noise or --dp-epsilon and --model mlp (BatchNorm "
                        "is refused); epsilon is reported after each epoch")
    noise = t.add_mutually_exclusive_group()
    noise.add_argument("--dp-noise", type=float, metavar="SIGMA", help="with --dp-clip: the noise multiplier "
                                                                        "(noise std over C)")
    noise.add_argument("--dp-epsilon", type=float, metavar="E",
                       help="with --dp-clip: the noise multiplier that reaches epsilon E after --epochs")
    t.add_argument("--dp-delta", type=float, default=1e-5, metavar="D", help="with --dp-clip: the delta of epsilon")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar, only a line per epoch (the bar is drawn only on a terminal anyway)")
    t.set_defaults(run=train, targets=None)  # targets: the datasets found, stored for --resume
    return t
