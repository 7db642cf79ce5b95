"""DistributedTrainer: a Trainer in one process of a data-parallel job (issue 8)."""
from ..optimizers.gradientaccumulation import GradientAccumulation
from .sharded import Sharded
from .trainer import Trainer


class DistributedTrainer(Sharded, Trainer):
    """Data-parallel training: every process holds the whole model, walks its own contiguous shard of
    the host data and, at every step, sums the gradients of all processes with one all-reduce per flat
    gradient buffer (one per dtype: the optimizer's global state) before the optimizer's update, which
    then runs identically everywhere, so the weights stay identical without being sent again.

    The step is the one a single process would take on the union of the processes' batches: each
    process weights its batch-mean gradient by its share of the step's samples before the sum. At each
    macrobatch the processes exchange their macrobatch sizes (one small collective); a process with
    fewer batches in it, or with no macrobatch left, joins the remaining steps with a zero gradient, so
    shards of unequal size still see every sample exactly once and the collectives stay matched.

    At construction rank 0's parameters and statistics are broadcast, so every process starts
    identical. Batch statistics (BatchNorm) stay per process. The training error and accuracy are summed
    over the processes at the end of each call. comm: an engine.communicator.Communicator.

    Not with GradientAccumulation (it already steps on a group's mean; use a larger world instead) nor
    onNonFinite="skip" (a batch skipped in one process would unmatch the collectives): a NaN stops the
    job. ``train`` (device-resident data) takes the given arrays as this process's part.
    """

    def __init__(self, mod, cost, optimizer, comm, onBatchFinish=None, batchsize=128, checkFinite=True):
        if isinstance(optimizer, GradientAccumulation):
            raise ValueError("DistributedTrainer: GradientAccumulation is not supported; the processes "
                             "already add up their batches in every step")
        super().__init__(mod, cost, optimizer, onBatchFinish, batchsize, checkFinite)
        self.comm = comm
        self.roundSizes = [0]
        for var in mod.getVariables().values():
            comm.broadcast(var.data)
        for owner, name in mod.getAttrs().values():
            comm.broadcast(owner.attrs[name])

    def trainFromHost(self, data, target, macroBatchSize=10000, onMacroBatchFinish=None, random=True, *,
                      startMacroBatch=0):
        super().trainFromHost(data, target, macroBatchSize, onMacroBatchFinish, random, startMacroBatch=startMacroBatch)
        self.finishCall()

    def train(self, data, target, random=True):
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
        for _ in range(self.batchCount(0, size), max(self.batchCount(0, n) for n in self.roundSizes)):
            self.reduceAndStep(0.0)
            self.state = {**self.state, "size": 0}
            if self.onBatchFinish is not None:  # a per-batch schedule advances in every process alike
                self.onBatchFinish(self)
        return any(self.roundSizes)

    def step(self):
        state, batchsize = self.state, self.batchsize
        first = state["start"]
        total = sum(min(max(n - first, 0), batchsize) for n in self.roundSizes)
        self.reduceAndStep(state["size"] / total)

    def reduceAndStep(self, share):
        """Scale this process's gradients by its share of the step's samples, sum them over the
        processes and update (share 0: a process without a batch in this step)."""
        self.settleGrads()
        for grad in self.optimizer.gradArrays():
            if share == 0.0:
                grad.fill(0)
            elif share != 1.0:
                grad *= share
            self.comm.allreduce(grad)
        self.optimizer.update()
