"""Data-parallel throughput: ``python bench/distributed.py`` (needs mpiexec and mpi4py).

Trains an MLP (784-1024-1024-10, fp32, Adam, batch 128 per process) with DistributedTrainer on
generated data and reports samples/s for 1 process with 1 and with all BLAS threads, and for N
processes on the same cores: with 1 thread each, with the thread counts macrobatch picks (the cores
shared) and with every process running a thread per core; also the all-reduce time per step and its
share of the step, with the gradients summed as float32 and as 16-bit words (bfloat16, float16:
encode, all-reduce, decode).
Each configuration runs in its own mpiexec job; this script, run without MPI, starts them and prints
the table. The weak scaling this measures is what one machine's cores give; across GPUs or machines
the share of the all-reduce is what to watch.

Options: --ranks N (default 2), --samples S per epoch over all processes (default 16384), --epochs E timed
(default 3).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from macrobatch.engine.parallel import threadVariables


def worker(samples, epochs, reduceDtype):
    """One process of the job: time epochs of trainFromHost, and the all-reduces inside them."""
    from macrobatch.costs import CrossEntropy
    from macrobatch.engine import setSeed
    from macrobatch.engine.communicator import Communicator
    from macrobatch.handlers.distributedtrainer import DistributedTrainer
    from macrobatch.modules import Activation, Linear, Sequential
    from macrobatch.optimizers import Adam

    comm = Communicator()
    setSeed(0)
    net = Sequential(Linear(784, 1024), Activation("relu"), Linear(1024, 1024), Activation("relu"), Linear(1024, 10))
    optimizer = Adam(learnRate=1e-3)
    optimizer.setupOn(net)
    rng = np.random.default_rng(comm.rank)
    data = rng.standard_normal((samples * comm.size, 784), dtype=np.float32)
    labels = rng.integers(0, 10, samples * comm.size)
    trainer = DistributedTrainer(net, CrossEntropy(), optimizer, comm, batchsize=128,
                                 reduceDtype=None if reduceDtype == "float32" else reduceDtype)
    reduceSeconds = [0.0]

    def timed(function):
        def call(*args):
            start = time.perf_counter()
            function(*args)
            reduceSeconds[0] += time.perf_counter() - start
        return call

    comm.allreduce, trainer.allreduceWords = timed(comm.allreduce), timed(trainer.allreduceWords)
    trainer.trainFromHost(data, labels, macroBatchSize=4096)  # warm up
    comm.barrier()
    reduceSeconds[0], steps0 = 0.0, optimizer.steps
    start = time.perf_counter()
    for _ in range(epochs):
        trainer.trainFromHost(data, labels, macroBatchSize=4096)
    comm.barrier()
    seconds = time.perf_counter() - start
    steps = optimizer.steps - steps0
    shares = comm.allgather(reduceSeconds[0])
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.size, "samplesPerSecond": epochs * samples * comm.size / seconds,
                          "stepMs": 1e3 * seconds / steps, "allreduceMs": 1e3 * max(shares) / steps}))


def run(ranks, threads, samples, epochs, reduceDtype="float32"):
    """One mpiexec job's figures; threads None leaves the thread counts to macrobatch (the cores shared)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    for name in threadVariables:
        env.pop(name, None)
        if threads is not None:
            env[name] = str(threads)
    out = subprocess.run(["mpiexec", "--oversubscribe", "--bind-to", "none", "-n", str(ranks), sys.executable,
                          __file__, "--worker", "--samples", str(samples // ranks), "--epochs", str(epochs),
                          "--reduce-dtype", reduceDtype],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--samples", type=int, default=16384, help="samples per epoch, over all processes")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reduce-dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.samples, args.epochs, args.reduce_dtype)
        return
    cores = os.cpu_count()
    rows = [("1 process, 1 thread", run(1, 1, args.samples, args.epochs)),
            (f"1 process, {cores} threads", run(1, cores, args.samples, args.epochs)),
            (f"{args.ranks} processes, 1 thread each", run(args.ranks, 1, args.samples, args.epochs)),
            (f"{args.ranks} processes, threads left to macrobatch", run(args.ranks, None, args.samples, args.epochs)),
            (f"{args.ranks} processes, {cores} threads each (oversubscribed)",
             run(args.ranks, cores, args.samples, args.epochs))]
    rows += [(f"{args.ranks} processes, 1 thread each, {kind} all-reduce",
              run(args.ranks, 1, args.samples, args.epochs, kind)) for kind in ("bfloat16", "float16")]
    base = rows[0][1]["samplesPerSecond"]
    print("| configuration | samples/s | vs 1 process, 1 thread | step ms | all-reduce ms | all-reduce share |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['samplesPerSecond']:.0f} | {r['samplesPerSecond'] / base:.2f} | {r['stepMs']:.1f} | "
              f"{r['allreduceMs']:.2f} | {r['allreduceMs'] / r['stepMs']:.1%} |")


if __name__ == "__main__":
    main()
