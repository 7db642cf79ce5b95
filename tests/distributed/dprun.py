"""Driver run under mpiexec by test_dp_distributed.py: python dprun.py MODE OUT.json [MACROBATCH].

Every mode trains a DistributedTrainer with a DifferentialPrivacy optimizer and Poisson sampling, batches of
BATCH samples, on 80 samples per rank and one more on every other rank (rank 0's shard is the smallest, so it
sits out steps: those must still carry the noise)."""
import json
import sys

import numpy as np

from macrobatch.costs import CrossEntropy
from macrobatch.engine import backend, setSeed, toHost
from macrobatch.engine.communicator import Communicator, abortOnError
from macrobatch.handlers.distributedtrainer import DistributedTrainer
from macrobatch.handlers.fit import Fit
from macrobatch.modules import Activation, Linear, Sequential
from macrobatch.optimizers import SGD
from macrobatch.privacy.differentialprivacy import DifferentialPrivacy

BATCH, CLIP = 8, 0.3
mode, out = sys.argv[1], sys.argv[2]
comm = Communicator()


def samples():
    return 80 * comm.size + comm.size - 1


def weights(net):
    return {key: ary.tolist() for key, ary in net.getState().items()}


class Recording(DistributedTrainer):
    """Records every step this process takes: the sample ids (column 0 of the data times 256) of its batch, or
    None for a step it has no batch in."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = []

    def handleBatch(self, batch, idx, state):
        self.steps.append([round(v * 256) for v in toHost(batch[0][:, 0]).tolist()])
        super().handleBatch(batch, idx, state)

    def idleStep(self, first):
        self.steps.append(None)
        super().idleStep(first)


with abortOnError(comm):
    if mode == "union":  # noise 0: the steps of one process on the union of the batches
        rng = np.random.default_rng(0)
        x = rng.standard_normal((samples(), 6)).astype(np.float32)
        x[:, 0] = np.arange(samples()) / 256  # the sample's id, exact in float32
        y = rng.integers(0, 3, samples())
        setSeed(1 + comm.rank)  # weights made equal by the broadcast; each rank its own Poisson draws
        net = Sequential(Linear(6, 16), Activation("relu"), Linear(16, 3))
        optimizer = DifferentialPrivacy(SGD(learnRate=0.5), CLIP, 0.0).setupOn(net)
        trainer = Recording(net, CrossEntropy(), optimizer, comm, batchsize=BATCH, poisson=True)
        start = weights(net)
        trainer.trainFromHost(x, y, macroBatchSize=int(sys.argv[3]))
        result = {"start": start, "weights": weights(net), "steps": trainer.steps, "rate": trainer.sampleRate,
                  "updates": optimizer.steps}
    elif mode == "noise":  # zero data: every per-sample gradient is 0, so each step moves by the noise alone
        x, y = np.zeros((samples(), 100), np.float32), np.zeros(samples(), np.int64)
        setSeed(5 + comm.rank)
        net = Sequential(Linear(100, 60, useBias=False))
        optimizer = DifferentialPrivacy(SGD(learnRate=1.0), 0.5, 2.0).setupOn(net)
        seen = [toHost(net.getVariables()["0.W"].data).copy()]  # the weights after every step
        trainer = Recording(net, CrossEntropy(), optimizer, comm, batchsize=BATCH, poisson=True,
                            onBatchFinish=lambda trainer: seen.append(toHost(net.getVariables()["0.W"].data).copy()))
        trainer.trainFromHost(x, y, macroBatchSize=40)
        result = {"weights": weights(net), "steps": trainer.steps,
                  "moves": [float((after - before).std()) for before, after in zip(seen, seen[1:])]}
    elif mode == "fit":  # Fit over the job: epsilon at the job's rate, the same everywhere
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((samples(), 6)).astype(np.float32), rng.integers(0, 3, samples())
        setSeed(1 + comm.rank)
        net = Sequential(Linear(6, 16), Activation("relu"), Linear(16, 3))
        optimizer = DifferentialPrivacy(SGD(learnRate=0.5), CLIP, 1.1).setupOn(net)
        fit = Fit(net, CrossEntropy(), optimizer, batchsize=BATCH, macroBatchSize=int(sys.argv[3]), seed=3, comm=comm)
        history = fit.run(x, y, 2)
        result = {"weights": weights(net), "epsilon": history["epsilon"], "rate": fit.trainer.sampleRate,
                  "updates": optimizer.steps}
    elif mode == "syncs":  # the host synchronisations of a call, with batches of 25 and of 5
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((400, 6)).astype(np.float32), rng.integers(0, 3, 400)
        setSeed(2 + comm.rank)
        result = {}
        for batchsize in (25, 5):
            net = Sequential(Linear(6, 16), Activation("relu"), Linear(16, 3))
            optimizer = DifferentialPrivacy(SGD(learnRate=0.1), 1.0, 1.0).setupOn(net)
            trainer = DistributedTrainer(net, CrossEntropy(), optimizer, comm, batchsize=batchsize, poisson=True)
            trainer.trainFromHost(x, y, macroBatchSize=100)  # compiles the kernels, allocates the buffers
            before = backend.xp._core.stats()["syncs"]
            trainer.trainFromHost(x, y, macroBatchSize=100)
            result[batchsize] = {"syncs": backend.xp._core.stats()["syncs"] - before, "steps": optimizer.steps}
    results = comm.allgather(result)
    if comm.rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)
