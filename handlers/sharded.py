"""Sharded: what every handler in one process of a data-parallel job shares (issue 8)."""
from ..costs.multi import mapAccumulator
from .handler import spanRange


def shardRange(size, rank, ranks):
    """The contiguous samples [start, stop) of rank's shard: shards differ in size by at most one."""
    return size * rank // ranks, size * (rank + 1) // ranks


class Sharded:
    """Mixin for a Handler subclass holding ``comm`` (an engine.communicator.Communicator): a host walk
    covers only this process's contiguous shard of the samples, so each process reads only its part of
    an HDF5 file and every sample is seen once across processes; ``reduceAccumulators`` sums the cost's
    (and metrics') accumulators over the processes, so every one reports the global figures."""

    def hostSpans(self, size, macroBatchSize):
        return spanRange(*shardRange(size, self.comm.rank, self.comm.size), macroBatchSize)

    def jobAccumulator(self):
        """Copies of the cost's accumulators summed over the processes (collective: every process calls it)."""
        return mapAccumulator(self.cost.getAccumulator(), self.jobSum)

    def jobSum(self, value):
        """value summed over the processes: a host count returned, a device array in place."""
        if isinstance(value, int):
            return self.comm.sum(value)
        self.comm.allreduce(value.reshape(-1))
        return value

    def reduceAccumulators(self, metrics=()):
        self.cost.setAccumulator(self.jobAccumulator())
        for metric in metrics:
            for ary in metric.accums.values():
                self.comm.allreduce(ary.reshape(-1))
            metric.count = self.comm.sum(metric.count)
