"""Fit: epochs of training and validation with callbacks, schedules and exact resume (seeds 000, 002).

Built on the handlers: each epoch is one Trainer pass (``trainFromHost`` for host arrays and h5py
Datasets, ``train`` for device arrays) and, with validation data, one Validator pass.
"""
import copy
import json
import numbers
import signal
import threading
import time

import numpy

from ..costs.multi import mapAccumulator
from ..engine import serialize, setSeed
from ..engine.backend import isCuda, isDeviceArray, toHost
from ..engine.communicator import abortOnError
from ..engine.errors import ModelFileError
from ..engine.random import hostRng
from ..privacy.accountant import RdpAccountant, checkedDelta
from ..privacy.differentialprivacy import privacyOf
from .calculator import Calculator
from .distributedtrainer import DistributedTrainer
from .distributedvalidator import DistributedValidator
from .trainer import Trainer
from .validator import Validator


checkpointFormat = "macrobatch-checkpoint-1"


def resident(ary):
    """Whether ary is a CuPy array already on the GPU: then Fit trains on it in place. Anything else
    (NumPy arrays, h5py Datasets) is host data, streamed in macrobatches, on either backend alike."""
    return isCuda and isDeviceArray(ary)


def epochSeed(seed, epoch, macroBatch=None, rank=0):
    """The seed of the random sources at the start of an epoch (the macrobatch order) and of each of its
    macrobatches (shuffles, dropout; each process of a data-parallel job draws its own): a run resumed
    at any of these points draws what a straight one drew."""
    entropy = [seed, epoch] if macroBatch is None else [seed, epoch, macroBatch] + ([rank] if rank else [])
    return int(numpy.random.SeedSequence(entropy).generate_state(1)[0])


class Fit:
    """Trains mod on cost with optimizer (set up on mod) for a number of epochs.

    Data may be NumPy arrays or h5py Datasets (streamed with trainFromHost in macrobatches of
    macroBatchSize) or CuPy arrays on the GPU (trained in place with train). A model with several outputs
    takes a list of target arrays (and of validation targets), one per output, with costs.Multi.
    batchsize, macroBatchSize, random: as for Trainer.trainFromHost. callbacks: Callback objects.
    schedule: a learning-rate schedule (optimizers.schedules), stepped after every update and epoch.
    valCost: the cost the Validator reports (default: a copy of cost, its settings included); metrics: metric
    objects for it (costs.metrics). An optimizer wrapped in GradientAccumulation is flushed at the end of
    every epoch, so a last partial group of batches is applied. seed: the base seed; every epoch and every
    macrobatch reseeds all random sources from (seed, epoch[, macrobatch]), so training is reproducible
    and a run resumed from a checkpoint, at an epoch's end or between two macrobatches, continues
    exactly (default: drawn once from the engine's generator). Ctrl-C stops training cleanly after the
    current batch (see run); in a data-parallel job it ends the job (MPI stops every process) and the
    last checkpoint is where to resume. comm: an engine.communicator.Communicator of several processes
    for data-parallel training (DistributedTrainer and DistributedValidator; rank 0's seed is used
    everywhere; give writing callbacks to rank 0 only); syncBatchNorm and reduceDtype: DistributedTrainer's
    (synchronised BatchNorm statistics, a 16-bit gradient all-reduce), unused without comm.
    onNonFinite: the Trainer's ("skip" leaves out batches whose loss or gradients are NaN or Inf; a
    per-batch schedule does not advance on them). precision: the Trainer's (None: the optimizer's;
    "float16" or "bfloat16" trains in mixed precision). Under mixed precision, checkpoints, best weights and
    saved models hold the float32 master weights; validation runs in the training precision.

    Differential privacy: with an optimizer that is or wraps a privacy.DifferentialPrivacy, Fit trains with
    Poisson sampling (Trainer poisson=True), keeps an RdpAccountant stepped once per optimizer step at the
    Trainer's sampleRate and the wrapper's noiseMultiplier, and logs ``epsilon`` at privacyDelta (unused
    otherwise) after each epoch; checkpoints keep the accountant. With GradientAccumulation(DifferentialPrivacy(
    ...), k) each optimizer step is one Poisson logical batch at rate k * batchsize / macroBatchSize, cut into k
    batches (see Handler), so the accountant steps once per logical step at that rate; no group straddles two
    macrobatches, so checkpoints between macrobatches hold none pending and the flush at the epoch's end applies
    nothing. With comm, every process Poisson-samples its own shard at the job's one rate and rank 0 alone adds
    the noise (see DistributedTrainer): the accountant steps at the job's sampleRate, identically everywhere.

    ``history`` maps each figure to its per-epoch list: epoch, loss and the training cost's other
    metrics (accuracy, ...), val_loss and val_* with validation data, learnRate, time (seconds). Only
    numbers go there; array metrics (a confusion matrix) are in ``validator.metrics`` after each epoch.
    """

    def __init__(self, mod, cost, optimizer, batchsize=128, macroBatchSize=10000, callbacks=(), schedule=None,
                 valCost=None, metrics=None, random=True, seed=None, onNonFinite="raise", comm=None,
                 syncBatchNorm=False, reduceDtype=None, precision=None, privacyDelta=1e-5):
        self.comm = comm if comm is not None and comm.size > 1 else None
        self.privacy = privacyOf(optimizer)
        if self.privacy is not None:
            self.privacyDelta = checkedDelta(privacyDelta)
        self.accountant = None if self.privacy is None else RdpAccountant()
        self.accountedSteps = 0  # the optimizer steps the accountant holds
        self.mod, self.optimizer, self.schedule = mod, optimizer, schedule
        self.macroBatchSize, self.random = macroBatchSize, random
        self.callbacks = list(callbacks)
        valCost = valCost if valCost is not None else validationCost(cost)
        if self.comm is None:
            self.trainer = Trainer(mod, cost, optimizer, onBatchFinish=self.batchFinished, batchsize=batchsize,
                                   onNonFinite=onNonFinite, precision=precision, poisson=self.privacy is not None)
            self.validator = Validator(mod, valCost, batchsize=batchsize, metrics=metrics,
                                       onBatchFinish=self.checkInterrupt)
        else:
            self.trainer = DistributedTrainer(mod, cost, optimizer, self.comm, onBatchFinish=self.batchFinished,
                                              batchsize=batchsize, syncBatchNorm=syncBatchNorm,
                                              reduceDtype=reduceDtype, precision=precision,
                                              poisson=self.privacy is not None)
            self.validator = DistributedValidator(mod, valCost, self.comm, batchsize=batchsize, metrics=metrics)
        seed = int(hostRng().integers(2 ** 31)) if seed is None else int(seed)
        self.seed = seed if self.comm is None else self.comm.allgather(seed)[0]
        self.epoch, self.epochs = 0, 0
        self.position = 0  # macrobatches of the current epoch done (a checkpoint taken between two of them)
        self.resumedAccumulator = self.jobAccumulator = None
        self.history = {}
        self.stopTraining = self.interruptRequested = False

    @property
    def processes(self):
        """The number of processes training together (1 without comm)."""
        return 1 if self.comm is None else self.comm.size

    def run(self, data, target, epochs, valData=None, valTarget=None):
        """Train until epochs epochs are complete (counting those of a resumed checkpoint) or a callback
        stops training; returns the history.

        Ctrl-C (SIGINT) stops at the end of the current batch, never inside an update or a checkpoint
        write: callbacks' ``onInterrupt`` run, then KeyboardInterrupt is raised again. The interrupted
        epoch is not counted (``epoch`` stays at the epochs completed), so resuming from the last
        checkpoint redoes it. A second Ctrl-C interrupts at once.

        In a data-parallel job rank 0's callbacks decide: when they stop training, every process stops
        after the same epoch, and at the end rank 0's weights (restored best ones, say) are copied into
        every process. An exception in one process aborts the whole job (engine.communicator.abortOnError);
        Ctrl-C is raised on as KeyboardInterrupt, for the caller to report (the command line aborts then)."""
        with abortOnError(self.comm, Exception):
            return self.runEpochs(data, target, epochs, valData, valTarget)

    def runEpochs(self, data, target, epochs, valData, valTarget):
        self.stopTraining, self.epochs, self.interruptRequested = False, epochs, False
        previousHandler = self.deferInterrupts()
        try:
            for callback in self.callbacks:
                callback.onTrainBegin(self)
            while self.epoch < epochs and not self.stopTraining:
                self.runEpoch(data, target, valData, valTarget)
                self.checkInterrupt()
                if self.comm is not None:
                    self.stopTraining = self.comm.allgather(self.stopTraining)[0]
            for callback in self.callbacks:
                callback.onTrainEnd(self)
            if self.comm is not None:
                self.trainer.broadcastModel()
        except KeyboardInterrupt:
            for callback in self.callbacks:
                callback.onInterrupt(self)
            raise
        finally:
            if previousHandler is not None:
                signal.signal(signal.SIGINT, previousHandler)
        return self.history

    def runEpoch(self, data, target, valData, valTarget):
        setSeed(epochSeed(self.seed, self.epoch))
        for callback in self.callbacks:
            callback.onEpochBegin(self)
        start = time.perf_counter()
        self.trainer.onMacroBatchBegin = self.macroBatchBegan
        if resident(data):
            self.trainer.train(data, target, random=self.random)
        else:
            self.trainer.trainFromHost(data, target, self.macroBatchSize, self.macroBatchFinished, self.random,
                                       startMacroBatch=self.position)
        if hasattr(self.optimizer, "flush"):
            self.optimizer.flush()
        self.accountPrivacy()
        logs = self.epochLogs(valData, valTarget)
        logs["time"] = time.perf_counter() - start
        self.epoch, self.position = self.epoch + 1, 0
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if self.schedule is not None:
            self.schedule.stepEpoch(logs)
        for callback in self.callbacks:
            callback.onEpochEnd(self, logs)

    def deferInterrupts(self):
        """While run() goes, turn SIGINT into a request that checkInterrupt honours between batches.
        Only from the main thread and over Python's default handler: an application's own SIGINT
        handler is left alone (a KeyboardInterrupt it raises still reaches onInterrupt). Returns the
        handler to put back, or None."""
        if (threading.current_thread() is not threading.main_thread() or self.comm is not None
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            return None

        def request(signum, frame):
            if self.interruptRequested:
                raise KeyboardInterrupt
            self.interruptRequested = True

        return signal.signal(signal.SIGINT, request)

    def checkInterrupt(self, handler=None):
        """Honour a pending Ctrl-C; run after every training and validation batch (handler: unused, the
        Handler's onBatchFinish argument)."""
        if self.interruptRequested:
            raise KeyboardInterrupt

    def epochLogs(self, valData, valTarget):
        metrics = self.trainer.cost.getMetrics()
        logs = {"epoch": self.epoch + 1, "loss": metrics.pop("error")}
        logs.update(metrics)
        if valData is not None:
            if resident(valData):
                self.validator.validate(valData, valTarget)
            else:
                self.validator.validateFromHost(valData, valTarget, self.macroBatchSize)
            valMetrics = dict(self.validator.metrics)
            logs["val_loss"] = valMetrics.pop("error")
            logs.update({f"val_{key}": value for key, value in valMetrics.items() if isinstance(value, numbers.Real)})
        logs["learnRate"] = self.optimizer.learnRate
        if self.accountant is not None:
            logs["epsilon"] = self.accountant.epsilon(self.privacyDelta)
        return logs

    def accountPrivacy(self):
        """Step the accountant for the optimizer steps taken since it was last stepped (after each
        macrobatch and epoch, so a checkpoint taken then holds them), at this call's sample rate."""
        if self.accountant is not None and self.privacy.steps > self.accountedSteps:
            self.accountant.step(self.privacy.noiseMultiplier, self.trainer.sampleRate,
                                 self.privacy.steps - self.accountedSteps)
            self.accountedSteps = self.privacy.steps

    def batchFinished(self, trainer):
        if self.schedule is not None and not trainer.batchSkipped:
            self.schedule.stepBatch()
        for callback in self.callbacks:
            callback.onBatchEnd(self)
        self.checkInterrupt()

    def macroBatchBegan(self, trainer, index):
        """Reseed for this macrobatch and, first in a resumed epoch, bring back its accumulated loss."""
        setSeed(epochSeed(self.seed, self.epoch, index, 0 if self.comm is None else self.comm.rank))
        if self.resumedAccumulator is not None:
            trainer.cost.setAccumulator(self.resumedAccumulator)
            self.resumedAccumulator = None

    def macroBatchFinished(self, trainer):
        self.position = trainer.currMacroBatch + 1
        self.accountPrivacy()
        if self.comm is not None:  # what a checkpoint taken now (by rank 0) keeps of the epoch's loss
            self.jobAccumulator = trainer.jobAccumulator()
        for callback in self.callbacks:
            callback.onMacroBatchEnd(self)

    # --- checkpoints ----------------------------------------------------------------------

    def getState(self):
        """Everything a resumed run needs: weights and statistics, optimizer and schedule state,
        callbacks' state, the epoch count, the base seed and the history; between two macrobatches of an
        epoch, also how many are done and the training loss accumulated over them (in a data-parallel
        job, summed over the processes), and the number of processes and the macroBatchSize of the walk,
        which a resumed run between two macrobatches must match ('auto' takes the recorded size); under
        differential privacy, the accountant."""
        model = {"params": {}, "attrs": {}}
        inEpoch = self.comm is not None and self.position
        accumulator = self.jobAccumulator if inEpoch else self.trainer.cost.getAccumulator()
        for key, ary in self.modelState().items():
            kind, name = key.split("/", 1)
            model[kind][name] = ary
        return {"epoch": self.epoch, "seed": self.seed, "history": self.history, "model": model,
                "optimizer": self.optimizer.getState(),
                "schedule": None if self.schedule is None else self.schedule.getState(),
                "callbacks": {str(i): cb.getState() for i, cb in enumerate(self.callbacks)},
                "position": self.position, "processes": self.processes,
                "macroBatchSize": self.trainer.macroBatchSize or 0,
                "privacy": None if self.accountant is None else self.accountant.getState(),
                "accumulator": mapAccumulator(accumulator, lambda value: value if isinstance(value, int)
                                              else toHost(value))}

    def modelState(self):
        """Host copies of the model's arrays (mod.getState()), of the float32 master weights under mixed
        precision."""
        with self.optimizer.masterWeights():
            return {key: ary.copy() for key, ary in self.mod.getState().items()}

    def setModelState(self, state, source="state"):
        """mod.setState(state), into the float32 master weights under mixed precision (the 16-bit copy
        follows)."""
        with self.optimizer.masterWeights():
            self.mod.setState(state, source)

    def saveCheckpoint(self, path):
        """Write getState() to an HDF5 file, atomically: a crash mid-save leaves the previous file."""
        with serialize.atomicH5(path) as f:
            f.attrs["format"] = checkpointFormat
            f.attrs["blueprint"] = json.dumps(self.mod.getBlueprint())
            serialize.writeState(f.create_group("fit", track_order=True), self.getState())

    def resume(self, path):
        """Continue from a checkpoint written by saveCheckpoint; run() then trains the remaining epochs."""
        with serialize.openH5(path) as f:
            if f.attrs.get("format") != checkpointFormat:
                raise ModelFileError(f"{path}: not a macrobatch checkpoint")
            state = serialize.readState(f["fit"])
        self.setState(state, source=str(path))
        return self

    def setState(self, state, source="checkpoint"):
        """Restore a state from getState (the model checked whole before anything changes)."""
        position, processes = int(state.get("position", 0)), int(state.get("processes", 1))
        if position and processes != self.processes:
            raise ModelFileError(f"{source} was written between two macrobatches by a job of {processes} "
                                 f"process(es); resume it with {processes} (this job has {self.processes}), or "
                                 "from a checkpoint at an epoch's end")
        walked = int(state.get("macroBatchSize", 0))
        if position and walked and self.macroBatchSize != walked:
            if self.macroBatchSize != "auto":
                raise ModelFileError(f"{source} was written between two macrobatches of {walked} samples; resume "
                                     f"it with macroBatchSize {walked} or 'auto' (this run has {self.macroBatchSize}), "
                                     "or from a checkpoint at an epoch's end")
            self.macroBatchSize = walked  # 'auto' might choose otherwise now: the epoch must go on as it began
        privacy = state.get("privacy")
        if (privacy is None) != (self.accountant is None) and (int(state["epoch"]) or position):
            raise ModelFileError(f"{source} was written by a run " + ("without" if privacy is None else "with")
                                 + " differential privacy; resume it with an optimizer that "
                                 + ("is not" if privacy is None else "is") + " a DifferentialPrivacy, so that "
                                 "epsilon counts every step, or start a new run")
        self.setModelState({f"{kind}/{name}": ary for kind in ("params", "attrs")
                            for name, ary in state["model"].get(kind, {}).items()}, source)
        self.optimizer.setState(state["optimizer"])
        if self.accountant is not None:
            self.accountant = RdpAccountant()
            if privacy is not None:
                self.accountant.setState(privacy)
            self.accountedSteps = self.privacy.steps
        if self.schedule is not None and state.get("schedule") is not None:
            self.schedule.setState(state["schedule"])
        for i, callback in enumerate(self.callbacks):
            callback.setState(state.get("callbacks", {}).get(str(i), {}))
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])
        self.position = position
        self.resumedAccumulator = state["accumulator"] if position else None
        if position and self.comm is not None and self.comm.rank != 0:  # rank 0 brings back the job's sum
            self.resumedAccumulator = mapAccumulator(self.resumedAccumulator, lambda value: 0 if isinstance(value, int)
                                                     else numpy.zeros_like(value))
        self.history = {key: list(values) for key, values in state["history"].items()}


def validationCost(cost):
    """A copy of cost for the Validator, with the same settings (class weights, ignoreIndex, a Multi's costs and
    weights) and an accumulator of its own, empty, so that validating never touches training's figures."""
    copied = copy.deepcopy(cost)
    copied.resetAccumulator()
    return copied


def predict(mod, data, batchsize=128, macroBatchSize=10000, softmax=False):
    """The model's outputs for data (host arrays, h5py Datasets or device arrays), as a NumPy array (a list
    of them, one per output, for a model with several outputs). softmax=True gives a classifier's class
    probabilities: the softmax over axis 1 (the classes) of its raw scores, the logits, which it returns
    otherwise (a classifier trained with CrossEntropy outputs logits)."""
    calculator = Calculator(mod, batchsize=batchsize)
    outputs = calculator.calc(data) if resident(data) else calculator.calcFromHost(data, macroBatchSize)
    if not softmax:
        return outputs
    probabilities = []
    for scores in outputs if isinstance(outputs, list) else [outputs]:
        scores = numpy.exp(scores - scores.max(axis=1, keepdims=True))  # shifted: no overflow
        probabilities.append(scores / scores.sum(axis=1, keepdims=True))
    return probabilities if isinstance(outputs, list) else probabilities[0]
