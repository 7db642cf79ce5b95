"""Sharded: what every handler in one process of a data-parallel job shares (issue 8)."""
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
        saved = self.cost.getAccumulator()
        for key in ("error", "correct", "judged"):
            self.comm.allreduce(saved[key].reshape(-1))
        saved["count"] = self.comm.sum(saved["count"])
        return saved

    def reduceAccumulators(self, metrics=()):
        self.cost.setAccumulator(self.jobAccumulator())
        for metric in metrics:
            for ary in metric.accums.values():
                self.comm.allreduce(ary.reshape(-1))
            metric.count = self.comm.sum(metric.count)
