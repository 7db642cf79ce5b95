"""DistributedTrainer: a Trainer in one process of a data-parallel job (issue 8)."""
import contextlib

from ..engine.backend import isCuda, xp
from ..engine.errors import DtypeError, NonFiniteError
from ..engine.wire16 import Wire16
from ..modules.batchnorm import BatchNorm
from ..optimizers.gradientaccumulation import GradientAccumulation
from ..privacy.differentialprivacy import privacyOf
from .sharded import Sharded
from .trainer import Trainer


class DistributedTrainer(Sharded, Trainer):
    """Data-parallel training: every process holds the whole model, walks its own contiguous shard of
    the host data and, at every step, sums the gradients of all processes with one all-reduce per flat
    gradient buffer (one per dtype: the optimizer's global state) before the optimizer's update, which
    then runs identically everywhere, so the weights stay identical without being sent again.

    The step is the one a single process would take on the union of the processes' batches: each
    process weights its batch-mean gradient by its share of the step's samples before the sum (not with
    differential privacy: see below). At each macrobatch the processes exchange their macrobatch sizes
    (one small collective); a process with fewer batches in it, or with no macrobatch left, joins the
    remaining steps with a zero gradient, so shards of unequal size still see every sample exactly once
    and the collectives stay matched.

    At construction rank 0's parameters and statistics are broadcast, so every process starts
    identical. The training error and accuracy are summed over the processes at the end of each call.
    comm: an engine.communicator.Communicator.

    syncBatchNorm: BatchNorm layers (1D, 2D, 3D) take their training statistics over the step's batches
    of all processes together (three small all-reduces per layer and step), so training equals one
    process's on the union of the batches and running statistics stay identical everywhere; a process
    with no batch in a step runs one zero sample through the network, weighted 0, to keep the
    collectives matched. By default batch statistics stay per process, as do running statistics.

    reduceDtype: None (float32), "float16" or "bfloat16": the gradients are summed as 16-bit words,
    half the bytes on the wire, at the cost of rounding every process's gradient (bfloat16: 8 bits of
    mantissa, float32's range; float16: 11 bits, up to 65504, an overflow raises NonFiniteError on the
    CPU). float32 models only (or mixed precision, whose master gradients are float32).

    precision: the Trainer's. Under mixed precision each process unscales its 16-bit gradients into the
    float32 master gradients, and those are all-reduced (as float32, or as 16-bit words with
    reduceDtype); with float16 the processes also agree on whether the step is finite (one more
    all-reduce of one number per step), so an overflow in any process skips the step everywhere.

    Differential privacy (an optimizer that is or wraps a privacy.DifferentialPrivacy), DP-SGD over the job:
    each process's backward gives the plain sum of its batch's clipped per-sample gradients (no share
    weighting: it would need the drawn sizes, and one sample must move the sum by at most clipNorm); rank 0
    alone adds the Gaussian noise, in every step (on a zero gradient in one it has no batch in); every process
    divides by the step's expected batch size over the job (``stepExpected``; the wrapper's expectedBatchSize,
    when given, is that global one); then the gradients are summed. The step is the one a single process
    would take on the union of the batches with that divisor, the noise drawn once; no host synchronisation
    is added.

    poisson (DifferentialPrivacy only): each process Poisson-samples its own macrobatches (see Handler) at
    one rate for the whole job, ``sampleRate`` = batchsize over the largest macrobatch of any process, so the
    union of a step's batches holds every sample of the step's macrobatches independently at that rate: an
    accountant given sampleRate and the steps bounds the privacy loss as Handler says for one process (a
    sample takes part in its own macrobatch's steps only, so counting all of the job's steps is conservative;
    smaller shards or macrobatches give smaller batches on average, at the same rate). The processes must
    draw from different random streams (Fit seeds each rank apart; otherwise setSeed differently per rank).

    Not with GradientAccumulation (it already steps on a group's mean; use a larger world instead) nor
    onNonFinite="skip" (a batch skipped in one process would unmatch the collectives): a NaN stops the
    job. ``train`` (device-resident data) takes the given arrays as this process's part.
    """

    def __init__(self, mod, cost, optimizer, comm, onBatchFinish=None, batchsize=128, checkFinite=True,
                 syncBatchNorm=False, reduceDtype=None, precision=None, poisson=False):
        if isinstance(optimizer, GradientAccumulation):
            raise ValueError("DistributedTrainer: GradientAccumulation is not supported; the processes "
                             "already add up their batches in every step")
        if poisson and privacyOf(optimizer) is None:
            raise ValueError("DistributedTrainer: poisson=True needs a DifferentialPrivacy optimizer (weighting "
                             "the processes' mean gradients would need their drawn batch sizes)")
        super().__init__(mod, cost, optimizer, onBatchFinish, batchsize, checkFinite, precision=precision,
                         poisson=poisson)
        reduced = {str(grad.dtype) for grad in optimizer.gradArrays()}
        if reduceDtype is not None and reduced != {"float32"}:
            raise DtypeError(f"DistributedTrainer: reduceDtype={reduceDtype!r} needs a float32 model, got "
                             f"{', '.join(sorted(reduced))} (mixed precision reduces float32 master gradients)")
        self.comm = comm
        self.roundSizes = [0]
        self.share = StepShare(comm)
        self.syncModules = [m for _, m in mod.namedModules() if isinstance(m, BatchNorm)] if syncBatchNorm else []
        self.idleSample = None
        self.wire = None if reduceDtype is None else Wire16(reduceDtype)
        self.wireBuffers = {}
        self.broadcastModel()

    def broadcastModel(self):
        """Copy rank 0's parameters (the float32 masters under mixed precision) and statistics into every
        process's model (collective)."""
        with self.optimizer.masterWeights():
            for var in self.mod.getVariables().values():
                self.comm.broadcast(var.data)
            for owner, name in self.mod.getAttrs().values():
                self.comm.broadcast(owner.attrs[name])

    def trainFromHost(self, data, target, macroBatchSize=10000, onMacroBatchFinish=None, random=True, *,
                      startMacroBatch=0):
        self.keepIdleSample(data)
        super().trainFromHost(data, target, macroBatchSize, onMacroBatchFinish, random, startMacroBatch=startMacroBatch)
        self.finishCall()

    def train(self, data, target, random=True):
        self.keepIdleSample(data)
        super().train(data, target, random)
        self.finishCall()

    def finishCall(self):
        """Join the rounds of processes that still have macrobatches, then sum the training error."""
        while self.joinRound(0):
            pass
        self.reduceAccumulators()

    def handleMacroBatch(self, index, offset, data, target=None, random=True):
        self.joinRound(data.shape[0], lambda: super(DistributedTrainer, self).handleMacroBatch(
            index, offset, data, target, random))

    def joinRound(self, size, handle=None):
        """One macrobatch round: exchange sizes, handle ours (if any), then take the zero-gradient steps
        of batches other processes still have. Returns whether any process had samples."""
        self.roundSizes = self.comm.allgather(size)
        if handle is not None:
            handle()
        for j in range(self.batchCount(0, size), max(self.batchCount(0, n) for n in self.roundSizes)):
            self.idleStep(j * self.batchsize)
            self.state = {**self.state, "size": 0}
            if self.onBatchFinish is not None:  # a per-batch schedule advances in every process alike
                self.onBatchFinish(self)
        return any(self.roundSizes)

    def stepTotal(self, first):
        """The samples of all processes in the step whose batches start at sample first of the round."""
        return sum(min(max(n - first, 0), self.batchsize) for n in self.roundSizes)

    def stepExpected(self, first):
        """The step's expected batch size over the job (DP-SGD's divisor): batchsize for each process with a
        batch in it under Poisson sampling, else the batches' sizes; from the round's sizes, never the draw."""
        return self.batchsize * sum(n > first for n in self.roundSizes) if self.poisson else self.stepTotal(first)

    def beginCall(self, spans):
        super().beginCall(spans)
        if self.poisson:  # one rate for the whole job (collective): the lowest, that of the largest macrobatch
            self.sampleRate = min(self.comm.allgather(self.sampleRate))

    def handleBatch(self, batch, idx, state):
        with self.sharing(state["size"], self.stepTotal(state["start"])):
            super().handleBatch(batch, idx, state)

    @contextlib.contextmanager
    def sharing(self, samples, total):
        """Around one step: what this process holds of it, seen by the synchronised BatchNorms."""
        self.share.samples, self.share.total = samples, total
        for module in self.syncModules:
            module.sync = self.share
        try:
            yield
        finally:
            for module in self.syncModules:
                module.sync = None

    def keepIdleSample(self, data):
        """A zero sample shaped like the data, for the steps this process has no batch in (syncBatchNorm)."""
        shape = (1,) + tuple(data.shape[1:])
        if self.syncModules and (self.idleSample is None or self.idleSample.shape != shape):
            self.idleSample = xp.zeros(shape, dtype=self.dataDtype)

    def idleStep(self, first):
        """A step this process has no batch in: its gradient is zero; with synchronised BatchNorms it
        first runs the zero sample through forward and backward, weighted 0, so that their collectives
        happen here too."""
        if self.syncModules:
            with self.sharing(0, self.stepTotal(first)):
                out = self.mod(self.idleSample)
                grad = [xp.zeros_like(o) for o in out] if isinstance(out, list) else xp.zeros_like(out)
                self.mod.backward(grad, updGrad=False)
        if self.privacy is None:
            self.reduceAndStep(0.0)
        else:
            self.optimizer.zeroGradParams()
            self.privateStep(first)

    def step(self):
        if self.privacy is None:
            self.reduceAndStep(self.share.samples / self.share.total)
        else:
            self.privateStep(self.state["start"])

    def privateStep(self, first):
        """A DP-SGD step (see the class docstring): noise from rank 0 alone, the step's expected batch size over
        the job as the divisor, then the plain sum over the processes."""
        self.privacy.expectBatch(self.stepExpected(first), noisy=self.comm.rank == 0)
        self.reduceAndStep(1.0)

    def reduceAndStep(self, share):
        """Scale this process's gradients by its share of the step's samples, sum them over the
        processes and update (share 0: a process without a batch in this step)."""
        finite = self.optimizer.prepareGrads()  # zero-fills the gradients no module wrote; unscales 16-bit ones
        for i, grad in enumerate(self.optimizer.gradArrays()):
            if share == 0.0:
                grad.fill(0)
            elif share != 1.0:
                grad *= share
            if self.wire is None:
                self.comm.allreduce(grad)
            else:
                self.allreduceWords(i, grad)
        self.optimizer.applyUpdate(None if finite is None else self.agreeFinite(finite, share))

    def agreeFinite(self, finite, share):
        """The step's finite flag of the whole job (a 0-d device bool): false if any process with a batch in
        it found its gradients non-finite, so every process skips the same steps."""
        bad = xp.zeros(1, dtype=xp.float32) if share == 0.0 else (~finite).astype(xp.float32).reshape(1)
        return self.comm.allreduce(bad)[0] == 0

    def allreduceWords(self, i, grad):
        """Sum grad over the processes as 16-bit words, in a buffer kept per gradient array."""
        flat = grad.reshape(-1)
        bits = self.wireBuffers.get(i)
        if bits is None or bits.size != flat.size:
            bits = self.wireBuffers[i] = xp.empty(flat.size, dtype=xp.uint16)
        self.comm.allreduceWords(self.wire.encode(flat, bits), self.wire)
        self.wire.decode(bits, flat)
        if not isCuda and self.wire.kind == "float16" and not xp.isfinite(grad).all():
            raise NonFiniteError("the float16 all-reduce of the gradients overflowed (a sum beyond 65504); "
                                 "use reduceDtype='bfloat16', which has float32's range")


class StepShare:
    """This process's part of the current step: samples of its own, total of all processes."""

    def __init__(self, comm):
        self.comm, self.samples, self.total = comm, 0, 0
