"""Trainer: forward, cost, backward and optimizer update on every batch."""
import contextlib
import math

import numpy

from ..costs.multi import targetCount
from ..engine.backend import isCuda, toHost, xp
from ..engine.errors import NonFiniteError
from ..optimizers.gradientaccumulation import GradientAccumulation
from ..privacy.differentialprivacy import privacyOf
from .handler import Handler, checkOutputs


class Trainer(Handler):
    """Trains mod on cost with optimizer (already set up on mod with ``optimizer.setupOn(mod)``).

    A model with several outputs trains with costs.Multi (one cost per output) on a list of target
    arrays, one per output (see Handler).

    Each call resets the cost's accumulated error and switches mod to train mode; afterwards
    ``cost.getError()`` is the mean training error over the call.

    checkFinite: as for Handler (NaN or Inf in the data or targets stops the call before they are used).

    onNonFinite: what a batch whose loss or parameter gradients are NaN or Inf does.

    * ``"raise"`` (default): stop with NonFiniteError. On the CPU every batch is checked, loss and
      gradients (the loss is already a host number; the gradients cost one pass over the flat gradient
      buffers), before the bad step is applied. On the GPU the batch loop never waits for the device:
      each batch folds the finiteness of its gradients into a device flag, and the accumulated error and
      that flag are read once per macrobatch (one synchronisation), so the call stops at the end of the
      macrobatch that went bad, naming it, before the next macrobatch trains.
    * ``"skip"``: leave the weights and the optimizer state as they were for that batch, leave it out
      of the accumulated error and metrics, and count it in ``skippedBatches`` (reset by each call;
      ``batchSkipped`` tells whether the batch just handled was skipped). On
      the GPU this reads one flag from the device per batch, a synchronisation per batch. Not with
      GradientAccumulation, whose group sum cannot drop one batch's gradients.

    precision: None (default: the precision the optimizer was set up in, float32 unless told otherwise),
    "float32", "float16" or "bfloat16". A precision other than the optimizer's sets the optimizer up again
    on mod in it (before any step only): mixed precision, with float32 master weights in the optimizer and
    the model computing in 16 bits (see Optimizer). Data is then uploaded in the 16-bit dtype (half the
    bytes), the cost scores in float32 (see Cost) and, with float16, the loss gradient is multiplied by the
    optimizer's loss scale: a step whose gradients overflow is then skipped and the scale backed off by
    the LossScaler, on the device, instead of being an error; a NaN or Inf loss is still one.

    Differential privacy: with a DifferentialPrivacy optimizer (or one wrapped in GradientAccumulation), each
    batch's output gradient is the wrapper's clipped one (DifferentialPrivacy.clippedOutputGrad), so backward
    gives the sum of clipped per-sample gradients; every call first checks that the model allows per-sample
    gradients. poisson: Poisson sampling of the batches (see Handler), which the privacy accounting assumes;
    an empty batch still steps, on zero gradients (with DP: noise alone), so the number of steps does not
    depend on the draw. With a GradientAccumulation of k batches, Poisson sampling draws one logical batch per
    optimizer step and cuts it into k batches (Handler's batchesPerStep, set from it): each group of k is one
    logical batch at the logical rate, whose clipped sum is divided by k * batchsize, its expected size (the
    DifferentialPrivacy divides by batchsize, the group's mean by k). So a call never leaves a group pending; one
    that finds one pending (left by an unsampled call or an error) is refused before it starts.
    """

    def __init__(self, mod, cost, optimizer, onBatchFinish=None, batchsize=128, checkFinite=True, onNonFinite="raise",
                 precision=None, poisson=False):
        if precision is not None and precision != optimizer.precision:
            if optimizer.steps:
                raise ValueError(f"Trainer: precision={precision!r} would set the optimizer up again on the model, "
                                 f"losing {optimizer.steps} steps of its {optimizer.precision} state; set it up with "
                                 "setupOn(mod, precision=...) before training")
            optimizer.setupOn(mod, precision=precision)
        super().__init__(mod, onBatchFinish, batchsize, checkFinite, poisson)
        if onNonFinite not in ("raise", "skip"):
            raise ValueError(f"onNonFinite must be 'raise' or 'skip', got {onNonFinite!r}")
        if onNonFinite == "skip" and isinstance(optimizer, GradientAccumulation):
            raise ValueError("onNonFinite='skip' cannot be used with GradientAccumulation: a skipped batch's "
                             "gradients are already in the group's sum")
        self.cost, self.optimizer = cost, optimizer
        self.privacy = privacyOf(optimizer)
        if isinstance(optimizer, GradientAccumulation):
            self.batchesPerStep = optimizer.batches
        self.onNonFinite = onNonFinite
        self.skippedBatches = 0
        self.batchSkipped = False

    def trainFromHost(self, data, target, macroBatchSize=10000, onMacroBatchFinish=None, random=True, *,
                      startMacroBatch=0):
        """Train one pass over host data (NumPy arrays or h5py Datasets) in macrobatches (startMacroBatch:
        as for Handler.handleFromHost)."""
        self.begin()
        self.handleFromHost(data, target, macroBatchSize, onMacroBatchFinish, random, startMacroBatch=startMacroBatch)

    def train(self, data, target, random=True):
        """Train one pass over device-resident data."""
        self.begin()
        self.handle(data, target, random)

    advice = "Try a lower learning rate or gradient clipping"

    def begin(self):
        if self.poisson and self.batchesPerStep > 1 and self.optimizer.pending:
            raise ValueError(f"Trainer: Poisson sampling steps on whole logical batches of {self.batchesPerStep} "
                             f"batches, but the GradientAccumulation holds {self.optimizer.pending} pending batch(es) "
                             "of an earlier call; apply them with its flush() first")
        self.gradsFinite = xp.ones((), dtype=bool)  # all gradients finite since the last check (GPU only)
        self.cost.resetAccumulator()
        self.mod.trainMode()
        if self.privacy is not None:
            self.privacy.check(self.mod, self.cost)
        self.skippedBatches = 0

    def handleBatch(self, batch, idx, state):
        # Under loss scaling an overflow in the scaled gradients is expected now and then (the step is
        # skipped): NumPy's overflow warnings would only be noise.
        with numpy.errstate(over="ignore", invalid="ignore") if self.scaled else contextlib.nullcontext():
            self.trainBatch(batch, idx, state)

    def trainBatch(self, batch, idx, state):
        """Forward, cost, backward and (unless the batch is skipped) the optimizer step of one batch."""
        data, target = batch
        skip = self.onNonFinite == "skip"
        self.batchSkipped = False
        if self.privacy is not None:
            self.privacy.expectBatch(self.batchsize if self.poisson else state["size"])
        if state["size"] == 0:
            self.optimizer.zeroGradParams()
            self.step()
            return
        saved = self.cost.getAccumulator() if skip else None
        pred = checkOutputs(self.mod(data), target)
        if self.privacy is None:
            error, grad = self.cost(pred, target, self.optimizer.lossScale())
        else:
            error, grad = self.privacy.clippedOutputGrad(self.mod, self.cost, pred, target)
        where = (f"batch {idx} (macrobatch {state['macroBatch']}, samples "
                 f"{state['start']}..{state['start'] + state['size'] - 1} of it)")
        if not isCuda and not skip:
            self.checkLoss(float(error), where)
        self.optimizer.zeroGradParams()
        self.mod.backward(grad, updGrad=False)
        if skip and not self.stepIsFinite(error):
            self.cost.setAccumulator(saved)
            self.skippedBatches += 1
            self.batchSkipped = True
            return
        if not skip and not self.scaled:
            if isCuda:
                self.gradsFinite &= self.gradsAreFinite()
            elif not self.gradsAreFinite():
                raise NonFiniteError(f"parameter gradients became NaN or Inf at {where} with a finite loss "
                                     f"({float(error)}); the step was not applied. {self.advice}")
        self.step()

    def step(self):
        """Apply the optimizer to the batch's gradients (a data-parallel trainer reduces them first)."""
        self.optimizer.update()

    @property
    def scaled(self):
        """Whether the loss is scaled (float16 mixed precision): gradients that overflow are then the loss
        scaler's to skip, not an error."""
        return self.optimizer.lossScale() is not None

    def gradsAreFinite(self):
        """Whether every parameter gradient is finite: a device bool. Reading each Variable's grad first
        zero-fills the gradients no module wrote this batch, so stale values are never judged."""
        self.settleGrads()
        ok = xp.ones((), dtype=bool)
        for grad in self.optimizer.backwardGradArrays():
            ok &= xp.isfinite(grad).all()
        return ok

    def settleGrads(self):
        """Zero-fill, for real, the lazily zeroed gradients of parameters no module wrote this batch, so
        whatever reads the flat gradient buffers next sees zeros there, not an earlier batch's values."""
        for var in self.mod.getVariables().values():
            var.grad  # reading a lazily zeroed gradient fills it

    def stepIsFinite(self, error):
        """Loss and gradients all finite (the loss only, under loss scaling): one flag read from the device
        (a sync per batch on the GPU)."""
        return bool(xp.isfinite(error) & (True if self.scaled else self.gradsAreFinite()))

    def finishMacroBatch(self):
        """On the GPU, the once-per-macrobatch reads: labels the cost screened on the device, then the
        accumulated error and the gradient flag."""
        if isCuda:
            self.cost.checkTargets()
        if isCuda and self.onNonFinite == "raise":
            error, gradsFinite = toHost(xp.stack([self.cost.accumErr, self.gradsFinite.astype(xp.float64)]))
            where = f"macrobatch {self.currMacroBatch}"
            self.checkLoss(float(error), where)
            if not gradsFinite:
                raise NonFiniteError(f"parameter gradients became NaN or Inf in {where} with a finite loss; "
                                     f"steps were applied with them. {self.advice}")
        self.gradsFinite.fill(True)

    def prepareTarget(self, target):
        return self.cost.prepareTarget(target)

    @property
    def targetsTaken(self):
        return targetCount(self.cost)

    @staticmethod
    def checkLoss(error, where):
        if not math.isfinite(error):
            raise NonFiniteError(f"training loss became {error} at {where}; the step was not applied. "
                                 "Check the data for NaN/Inf and try a lower learning rate")
