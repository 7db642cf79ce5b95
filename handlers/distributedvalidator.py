"""DistributedValidator: a Validator in one process of a data-parallel job (issue 8)."""
from .sharded import Sharded
from .validator import Validator


class DistributedValidator(Sharded, Validator):
    """Validates this process's shard of host data; the error and every metric are then summed over
    the processes, so each one returns and reports the figures of the whole dataset. Device-resident
    data (``validate``) is taken as this process's part. comm: an engine.communicator.Communicator."""

    def __init__(self, mod, cost, comm, onBatchFinish=None, batchsize=128, metrics=None, checkFinite=True):
        super().__init__(mod, cost, onBatchFinish, batchsize, metrics, checkFinite)
        self.comm = comm

    def finish(self):
        self.reduceAccumulators(self.metricObjects)
        return super().finish()
