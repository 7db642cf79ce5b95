"""Data-parallel training over MPI (issue 8): several processes started by mpiexec train one model.

Each test runs mpirun.py under ``mpiexec -n N`` and checks what rank 0 gathered. They need Open MPI's
mpiexec and mpi4py (.ci/run installs both) and are skipped, saying so, where either is missing."""
import json
import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import backend, setSeed
from macrobatch.engine.communicator import launchedByMpi
from macrobatch.engine.parallel import threadVariables
from macrobatch.handlers.sharded import shardRange
from macrobatch.handlers.trainer import Trainer
from macrobatch.modules import Activation, BatchNorm1D, Conv1D, Flatten, Linear, Sequential
from macrobatch.optimizers import SGD

pytest.importorskip("mpi4py", reason="data-parallel tests need mpi4py (pip install macrobatch[mpi])")
MPIEXEC = shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="data-parallel tests need an MPI launcher (mpiexec)")
DRIVER = os.path.join(os.path.dirname(__file__), "mpirun.py")


def mpiexec(ranks, *args, timeout=120, threads="1", launcher=()):
    """Run the driver on ranks processes (threads: the thread variables' value, None to set none);
    returns (completed process, seconds)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    for name in threadVariables:
        env.pop(name, None)
        if threads is not None:
            env[name] = threads
    start = time.perf_counter()
    child = subprocess.run([MPIEXEC, "--oversubscribe", *launcher, "-n", str(ranks), sys.executable, DRIVER,
                            *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)
    return child, time.perf_counter() - start


def gathered(tmp_path, ranks, mode, *args, **options):
    out = tmp_path / "out.json"
    child, _ = mpiexec(ranks, mode, out, *args, **options)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(out.read_text())


def test_shards_are_contiguous_cover_everything_and_differ_by_at_most_one():
    for size in (0, 1, 5, 203, 1000):
        for ranks in (1, 2, 3, 7):
            shards = [shardRange(size, r, ranks) for r in range(ranks)]
            assert shards[0][0] == 0 and shards[-1][1] == size
            assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
            lengths = [stop - start for start, stop in shards]
            assert max(lengths) - min(lengths) <= 1


def test_a_single_process_is_not_a_job():
    assert not launchedByMpi()


def doubledBatchRun():
    """One process with batches of 20 on the samples two ranks train in batches of 10: (net, trainer)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    # Rank r trains on samples 100r.. in macrobatches of 50 and batches of 10: step k of one process with
    # batches of 20 takes rank 0's k-th batch and rank 1's k-th batch together.
    order = [start + rank * 100 + np.arange(10) for m in range(2) for j in range(5)
             for rank in range(2) for start in [50 * m + 10 * j]]
    order = np.concatenate(order)
    setSeed(1)
    net = Sequential(Linear(6, 16), Activation("relu"), Linear(16, 3))
    optimizer = SGD(learnRate=0.1)
    optimizer.setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=20)
    for epoch in range(2):
        trainer.trainFromHost(x[order], y[order], macroBatchSize=200, random=False)
    return net, trainer


def test_two_ranks_train_the_weights_one_rank_trains_with_the_doubled_batch(tmp_path):
    ranks = gathered(tmp_path, 2, "equal", "float32")
    assert ranks[0]["weights"] == ranks[1]["weights"]  # the same reduced step everywhere, bit for bit
    assert ranks[0]["error"] == ranks[1]["error"]
    net, trainer = doubledBatchRun()
    for key, ary in net.getState().items():
        np.testing.assert_allclose(np.array(ranks[0]["weights"][key], np.float32), ary, rtol=1e-5, atol=1e-6)
    assert ranks[0]["error"] == pytest.approx(trainer.cost.getError(), rel=1e-6)


@pytest.mark.parametrize("kind", ["float16", "bfloat16"])
def test_a_16_bit_all_reduce_trains_nearly_the_float32_weights(tmp_path, kind):
    ranks = gathered(tmp_path, 2, "equal", kind)
    assert ranks[0]["weights"] == ranks[1]["weights"]  # every rank decodes the same sum
    net, _ = doubledBatchRun()
    reference = net.getState()
    rounded = 0.0
    for key, ary in reference.items():
        got = np.array(ranks[0]["weights"][key], np.float32)
        np.testing.assert_allclose(got, ary, rtol=0, atol=2e-2 if kind == "bfloat16" else 2e-3)
        rounded = max(rounded, float(np.abs(got - ary).max()))
    assert rounded > 1e-7  # the gradients did travel rounded


def test_mixed_precision_ranks_reduce_float32_master_gradients_and_skip_overflows_together(tmp_path):
    ranks = gathered(tmp_path, 2, "mixed", "plain")
    assert ranks[0]["weights"] == ranks[1]["weights"] and ranks[0]["scaler"]["skippedSteps"] == 0
    net, _ = doubledBatchRun()
    for key, ary in net.getState().items():
        np.testing.assert_allclose(np.array(ranks[0]["weights"][key], np.float32), ary, rtol=0, atol=5e-3)
    # An overflow in rank 1 alone: both skip that step (rank 0 would otherwise step on the Inf in the sum).
    ranks = gathered(tmp_path, 2, "mixed", "overflow")
    assert ranks[0]["weights"] == ranks[1]["weights"] and ranks[0]["scaler"] == ranks[1]["scaler"]
    assert ranks[0]["scaler"]["skippedSteps"] >= 1
    assert all(np.isfinite(np.array(values)).all() for values in ranks[0]["weights"].values())


def bnReference():
    """One process training the driver's BatchNorm network on what two ranks train together."""
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((201, 4, 5)) * [[1.0], [2.0], [0.5], [3.0]] + [[0.5], [-1.0], [2.0], [0.0]])
    x, y = x.astype(np.float32), rng.integers(0, 3, 201)
    # Shards: rank 0 samples 0..99, rank 1 100..200, in macrobatches of 50 (rank 1's second holds 51)
    # and batches of 10; step k joins rank 0's k-th batch and rank 1's, the last has rank 1's sample 200.
    order = [np.arange(a, b) for m in range(2) for j in range(5) for rank in range(2)
             for a, b in [(rank * 100 + 50 * m + 10 * j, rank * 100 + 50 * m + 10 * j + 10)]] + [np.array([200])]
    order = np.concatenate(order)
    setSeed(3)
    net = Sequential(BatchNorm1D(4), Conv1D(4, 6, 3, pad=1), BatchNorm1D(6), Activation("relu"), Flatten(),
                     Linear(30, 3))
    optimizer = SGD(learnRate=0.1)
    optimizer.setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=20)
    for epoch in range(2):
        trainer.trainFromHost(x[order], y[order], macroBatchSize=201, random=False)
    return net, trainer, optimizer


def test_synchronised_batchnorm_trains_as_one_process_on_the_union_of_the_batches(tmp_path):
    ranks = gathered(tmp_path, 2, "syncbn")
    assert ranks[0]["weights"] == ranks[1]["weights"]  # running statistics included, bit for bit
    assert ranks[0]["steps"] == ranks[1]["steps"] == 22  # rank 0 joined the last step of each epoch idle
    net, trainer, optimizer = bnReference()
    assert optimizer.steps == 22
    for key, ary in net.getState().items():
        np.testing.assert_allclose(np.array(ranks[0]["weights"][key], np.float32), ary, rtol=1e-4, atol=1e-5,
                                   err_msg=key)
    assert ranks[0]["error"] == pytest.approx(trainer.cost.getError(), rel=1e-5)
    local = gathered(tmp_path, 2, "localbn")  # per-process statistics: not the same training
    assert local[0]["weights"]["attrs/0.mean"] != local[1]["weights"]["attrs/0.mean"]
    assert not np.allclose(np.array(local[0]["weights"]["params/5.W"]), net.getState()["params/5.W"], atol=1e-4)


def writeIds(path, samples):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((samples, 6)).astype(np.float32)
    data[:, 0] = np.arange(samples)  # the sample's id, exact in float32
    with h5py.File(path, "w") as f:
        f["data"], f["labels"] = data, rng.integers(0, 3, samples)


@pytest.mark.parametrize("ranks", [2, 3])
def test_every_sample_is_trained_once_across_ranks_and_validation_is_global(tmp_path, ranks):
    path = tmp_path / "ids.h5"
    writeIds(path, 203)  # unequal shards: some ranks take a zero-gradient step to stay matched
    results = gathered(tmp_path, ranks, "visit", path)
    seen = sorted(v for rank in results for v in rank["seen"])
    assert seen == list(range(203))
    assert len({rank["steps"] for rank in results}) == 1
    assert all(rank["weights"] == results[0]["weights"] for rank in results)
    assert all(rank["error"] == results[0]["error"] for rank in results)
    for rank in results:  # every rank reports the global figure, as one process over all the data would
        assert rank["valError"] == pytest.approx(results[0]["localError"], rel=1e-6)
        assert rank["valAccuracy"] == results[0]["valAccuracy"]


def test_a_failing_rank_stops_the_whole_job_with_its_error(tmp_path):
    path = tmp_path / "ids.h5"
    writeIds(path, 200)
    child, seconds = mpiexec(2, "fail", tmp_path / "out.json", path, timeout=60)
    assert child.returncode != 0
    assert "rank 1 fails on purpose at batch 3" in child.stderr
    assert "rank 1 of 2 failed; stopping the job" in child.stderr
    assert seconds < 30
    assert not (tmp_path / "out.json").exists()


def test_a_job_resumed_between_two_macrobatches_continues_exactly(tmp_path):
    path = tmp_path / "ids.h5"
    writeIds(path, 203)
    straight = gathered(tmp_path, 2, "fitrun", path, tmp_path / "ck")
    assert straight[0]["weights"] == straight[1]["weights"]
    middle = tmp_path / "ck" / "epoch-0001-mb000002.h5"  # epoch 2, after 2 of each rank's 3 macrobatches
    resumed = gathered(tmp_path, 2, "fitresume", path, middle)
    assert resumed[0]["weights"] == straight[0]["weights"]  # Dropout masks included: bit for bit
    assert resumed[1]["weights"] == straight[1]["weights"]
    # the epoch's loss: the job's sum over the first 2 macrobatches came back once, not once per rank
    assert resumed[0]["loss"] == pytest.approx(straight[0]["loss"], rel=1e-6)
    child, _ = mpiexec(3, "fitresume", tmp_path / "out.json", path, middle)
    assert child.returncode != 0
    assert "by a job of 2 process(es); resume it with 2 (this job has 3)" in child.stderr


def test_rank_0s_callbacks_stop_every_process_and_its_weights_end_everywhere(tmp_path):
    path = tmp_path / "ids.h5"
    writeIds(path, 100)
    results = gathered(tmp_path, 2, "stop", path)
    assert [rank["epochs"] for rank in results] == [2, 2]
    assert results[1]["weights"] == results[0]["weights"]
    assert not np.any(results[1]["weights"]["params/0.W"])


@pytest.mark.parametrize("binding", ["core", "none"])
def test_processes_share_the_cores_instead_of_each_running_a_thread_per_core(tmp_path, binding):
    for rank in gathered(tmp_path, 2, "threads", threads=None, launcher=("--bind-to", binding)):
        own = rank["cores"] if binding == "core" else max(1, rank["cores"] // 2)  # bound: 1 core each here
        blas = None if backend.isCuda else 1  # on the CPU the BLAS runs on one thread inside them
        assert rank["threads"] == {"workers": own, "blas": blas}
        assert rank["workers"] == own and (backend.isCuda or rank["blas"] == [1])
    for rank in gathered(tmp_path, 2, "threads", threads="1"):  # what the user sets stays
        assert rank["threads"] == {"workers": 1, "blas": None}


def test_cli_under_mpiexec_trains_with_rank_0_alone_writing_and_resumes(tmp_path):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", MACROBATCH_CPU_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MACROBATCH_CACHE=str(tmp_path / "cache"))
    command = [MPIEXEC, "--oversubscribe", "-n", "2", sys.executable, "-m", "macrobatch.cli", "train", "--model", "mlp",
               "--no-progress", "--curve", "none", "--out", str(tmp_path / "m.h5"), "--checkpoints", str(tmp_path / "ck"),
               "--csv", str(tmp_path / "log.csv")]
    first = subprocess.run(command + ["--epochs", "2"], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("epoch   2/2") == 1 and "2 processes" in first.stdout  # rank 0 prints, alone
    assert sorted(os.listdir(tmp_path / "ck")) == ["best.h5", "epoch-0001.h5", "epoch-0002.h5"]
    second = subprocess.run(command + ["--epochs", "3", "--resume"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("resumed from") == 1 and "epoch   3/3" in second.stdout
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch", "1", "2", "3"]


def test_cli_trains_the_cnn_with_synchronised_batchnorm_and_a_bfloat16_all_reduce(tmp_path):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", MACROBATCH_CPU_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MACROBATCH_CACHE=str(tmp_path / "cache"))
    child = subprocess.run([MPIEXEC, "--oversubscribe", "-n", "2", sys.executable, "-m", "macrobatch.cli", "train",
                            "--epochs", "3", "--no-progress", "--curve", "none", "--sync-batchnorm",
                            "--reduce-dtype", "bfloat16", "--out", str(tmp_path / "m.h5")],
                           env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-3000:]
    accuracy = float(child.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.6  # the CNN learns (about 0.85 after 3 epochs; chance is 0.1)


@pytest.mark.cuda
def test_nccl_collectives_16_bit_words_and_synchronised_batchnorm_run_on_one_gpu(tmp_path):
    result, = gathered(tmp_path, 1, "device")
    assert result["same"] == [True, True]  # a sum and a broadcast over one GPU leave the array
    assert result["words"] == {"bfloat16": True, "float16": True}  # device words equal the host's
    runs = result["runs"]
    for key, ary in runs["trainer"].items():  # synchronised over one process: plain BatchNorm
        np.testing.assert_allclose(runs["synced"][key], ary, rtol=1e-4, atol=1e-5, err_msg=key)
        # bfloat16 keeps 8 bits: the same bound as the CPU test of the 16-bit all-reduce above
        np.testing.assert_allclose(runs["bfloat16"][key], ary, rtol=0, atol=2e-2, err_msg=key)


def test_the_local_rank_comes_from_the_launcher(monkeypatch):
    from macrobatch.engine.backend import localRank
    for var in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(var, raising=False)
    assert localRank() == 0
    monkeypatch.setenv("SLURM_LOCALID", "3")
    assert localRank() == 3
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1")
    assert localRank() == 1
