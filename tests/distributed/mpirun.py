"""Driver run under mpiexec by test_distributed.py: python mpirun.py MODE OUT.json [FILE.h5]."""
import json
import os
import sys

import h5py
import numpy as np

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed, toHost
from macrobatch.engine.communicator import Communicator, abortOnError
from macrobatch.handlers.distributedtrainer import DistributedTrainer
from macrobatch.handlers.callbacks import Callback, ModelCheckpoint
from macrobatch.handlers.distributedvalidator import DistributedValidator
from macrobatch.handlers.fit import Fit
from macrobatch.handlers.validator import Validator
from macrobatch.modules import Activation, BatchNorm1D, Conv1D, Dropout, Flatten, Linear, Sequential
from macrobatch.optimizers import SGD, Adam

mode, out = sys.argv[1], sys.argv[2]
comm = Communicator()


def mlp(seed, optimizer):
    setSeed(seed + comm.rank)  # different initial weights per rank: the broadcast must make them equal
    net = Sequential(Linear(6, 16), Activation("relu"), Linear(16, 3))
    optimizer.setupOn(net)
    return net, optimizer


def bnNet():
    """Batch statistics in the first layer and after a convolution, on (batch, 4, 5) sequences."""
    setSeed(3 + comm.rank)
    return Sequential(BatchNorm1D(4), Conv1D(4, 6, 3, pad=1), BatchNorm1D(6), Activation("relu"), Flatten(),
                      Linear(30, 3))


def bnData():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((201, 4, 5)) * [[1.0], [2.0], [0.5], [3.0]] + [[0.5], [-1.0], [2.0], [0.0]])
    return x.astype(np.float32), rng.integers(0, 3, 201)


def weights(net):
    return {key: ary.tolist() for key, ary in net.getState().items()}


class Recording(DistributedTrainer):
    """Records the sample ids (column 0 of the data) of every batch it trains on."""

    def __init__(self, *args, failAt=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen, self.failAt = [], failAt

    def handleBatch(self, batch, idx, state):
        if self.failAt is not None and idx == self.failAt:
            raise ValueError(f"rank {self.comm.rank} fails on purpose at batch {idx}")
        self.seen.extend(int(v) for v in toHost(batch[0][:, 0]))
        super().handleBatch(batch, idx, state)


with abortOnError(comm):
    if mode == "equal":  # argv[3]: the all-reduce's dtype (float32, float16, bfloat16)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((200, 6)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
        net, optimizer = mlp(1, SGD(learnRate=0.1))  # SGD: a wrongly scaled gradient shows (Adam hides it)
        trainer = DistributedTrainer(net, CrossEntropy(), optimizer, comm, batchsize=10,
                                     reduceDtype=None if sys.argv[3] == "float32" else sys.argv[3])
        for epoch in range(2):
            trainer.trainFromHost(x, y, macroBatchSize=50, random=False)
        result = {"weights": weights(net), "error": trainer.cost.getError()}
    elif mode == "mixed":  # float16 mixed precision; argv[3] "overflow": one sample of rank 1's is huge
        rng = np.random.default_rng(0)
        x = rng.standard_normal((200, 6)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
        if sys.argv[3] == "overflow":
            x[150, :] = 3000.0  # its scaled gradients overflow float16 in rank 1 only
        net, optimizer = mlp(1, SGD(learnRate=0.1))
        trainer = DistributedTrainer(net, CrossEntropy(), optimizer, comm, batchsize=10, precision="float16")
        for epoch in range(2):
            trainer.trainFromHost(x, y, macroBatchSize=50, random=False)
        with optimizer.masterWeights():
            result = {"weights": weights(net), "error": trainer.cost.getError(),
                      "scaler": optimizer.lossScaler.getState()}
    elif mode in ("syncbn", "localbn"):
        x, y = bnData()
        net = bnNet()
        optimizer = SGD(learnRate=0.1)
        optimizer.setupOn(net)
        trainer = DistributedTrainer(net, CrossEntropy(), optimizer, comm, batchsize=10,
                                     syncBatchNorm=mode == "syncbn")
        for epoch in range(2):
            trainer.trainFromHost(x, y, macroBatchSize=50, random=False)
        result = {"weights": weights(net), "error": trainer.cost.getError(), "steps": optimizer.steps}
    elif mode in ("fitrun", "fitresume"):  # argv[3]: the data file, argv[4]: checkpoints folder or file
        setSeed(7 + comm.rank)
        net = Sequential(Linear(6, 16), Activation("relu"), Dropout(0.3), Linear(16, 3))
        optimizer = Adam(learnRate=0.01)
        optimizer.setupOn(net)
        checkpoints = [ModelCheckpoint(sys.argv[4], keepLast=None, everyMacroBatches=1)]
        fit = Fit(net, CrossEntropy(), optimizer, batchsize=10, macroBatchSize=40, seed=5, comm=comm,
                  callbacks=checkpoints if mode == "fitrun" and comm.rank == 0 else [])
        if mode == "fitresume":
            fit.resume(sys.argv[4])
        with h5py.File(sys.argv[3], "r") as f:
            fit.run(f["data"], f["labels"], epochs=2)
        result = {"weights": weights(net), "loss": fit.history["loss"]}
    elif mode == "stop":  # only rank 0 has callbacks: one stops training after epoch 2 of 6
        setSeed(7 + comm.rank)
        net = Sequential(Linear(6, 16), Activation("relu"), Linear(16, 3))
        optimizer = Adam(learnRate=0.01)
        optimizer.setupOn(net)

        class StopAfterTwo(Callback):
            def onEpochEnd(self, fit, logs):
                fit.stopTraining = fit.epoch == 2
                fit.mod.getVariables()["0.W"].data[...] = 0.0  # "restores" weights the others don't have

        fit = Fit(net, CrossEntropy(), optimizer, batchsize=10, macroBatchSize=40, seed=5, comm=comm,
                  callbacks=[StopAfterTwo()] if comm.rank == 0 else [])
        with h5py.File(sys.argv[3], "r") as f:
            fit.run(f["data"], f["labels"], epochs=6)
        result = {"weights": weights(net), "epochs": fit.epoch}
    elif mode == "threads":
        from macrobatch.engine import parallel
        from threadpoolctl import threadpool_info
        result = {"threads": comm.threads, "workers": parallel.workers, "cores": len(os.sched_getaffinity(0)),
                  "blas": [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]}
    elif mode == "device":  # one process on one GPU: NCCL's collectives and the CuPy paths run
        import cupy
        from macrobatch.engine.wire16 import Wire16
        from macrobatch.handlers.trainer import Trainer
        x = cupy.arange(1000, dtype=cupy.float32) / 7
        same = [bool((comm.allreduce(x.copy()) == x).all()), bool((comm.broadcast(x.copy()) == x).all())]
        values = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
        words = {}
        for kind in ("bfloat16", "float16"):
            wire, host = Wire16(kind), np.empty(5000, np.uint16)
            device = comm.allreduceWords(wire.encode(cupy.asarray(values), cupy.empty(5000, cupy.uint16)), wire)
            words[kind] = bool((cupy.asnumpy(device) == wire.encode(values, host)).all())
        x, y = bnData()
        runs = {}
        for name in ("trainer", "synced", "bfloat16"):
            net = bnNet()
            optimizer = SGD(learnRate=0.1)
            optimizer.setupOn(net)
            trainer = (Trainer(net, CrossEntropy(), optimizer, batchsize=10) if name == "trainer" else
                       DistributedTrainer(net, CrossEntropy(), optimizer, comm, batchsize=10, syncBatchNorm=True,
                                          reduceDtype="bfloat16" if name == "bfloat16" else None))
            trainer.trainFromHost(x, y, macroBatchSize=50, random=True)
            runs[name] = weights(net)
        result = {"same": same, "words": words, "runs": runs}
    elif mode in ("visit", "fail"):
        with h5py.File(sys.argv[3], "r") as f:
            net, optimizer = mlp(1, Adam(learnRate=0.01))
            trainer = Recording(net, CrossEntropy(), optimizer, comm, batchsize=10,
                                failAt=3 if mode == "fail" and comm.rank == 1 else None)
            trainer.trainFromHost(f["data"], f["labels"], macroBatchSize=40, random=True)
            validator = DistributedValidator(net, CrossEntropy(), comm, batchsize=7)
            valError = validator.validateFromHost(f["data"], f["labels"], macroBatchSize=30)
            localError = Validator(net, CrossEntropy()).validateFromHost(f["data"], f["labels"])
            result = {"seen": trainer.seen, "steps": optimizer.steps, "weights": weights(net),
                      "error": trainer.cost.getError(), "valError": valError, "localError": localError,
                      "valAccuracy": validator.metrics["accuracy"]}
    results = comm.allgather(result)
    if comm.rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)
