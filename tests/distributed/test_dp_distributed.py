"""DP-SGD over a data-parallel job (issue 18): each process sums its clipped per-sample gradients, rank 0 alone
adds the noise, every process divides by the step's expected batch size over the job.

The job tests run dprun.py under ``mpiexec -n N`` (as test_distributed.py runs mpirun.py) and check what rank 0
gathered; they need Open MPI's mpiexec and mpi4py and are skipped, saying so, where either is missing."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.handlers.distributedtrainer import DistributedTrainer
from macrobatch.handlers.trainer import Trainer
from macrobatch.modules import Activation, Linear, Sequential
from macrobatch.optimizers import SGD
from macrobatch.privacy.accountant import epsilon
from macrobatch.privacy.differentialprivacy import DifferentialPrivacy

MPIEXEC = shutil.which("mpiexec")
DRIVER = os.path.join(os.path.dirname(__file__), "dprun.py")
BATCH, CLIP = 8, 0.3  # dprun.py's
needsMpi = pytest.mark.skipif(MPIEXEC is None, reason="data-parallel tests need an MPI launcher (mpiexec)")


def job(tmp_path, ranks, mode, *args):
    """What every rank of dprun.py MODE on ranks processes returned, by rank."""
    pytest.importorskip("mpi4py", reason="data-parallel tests need mpi4py (pip install macrobatch[mpi])")
    out = tmp_path / "out.json"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               MACROBATCH_CPU_THREADS="1", OPENBLAS_NUM_THREADS="1")
    child = subprocess.run([MPIEXEC, "--oversubscribe", "-n", str(ranks), sys.executable, DRIVER, mode, str(out), *args],
                           env=env, capture_output=True, text=True, timeout=180)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(out.read_text())


def participants(results):
    """For every step: the ranks with a batch in it."""
    return [[r for r, rank in enumerate(results) if rank["steps"][s] is not None]
            for s in range(len(results[0]["steps"]))]


def unionSteps(results, start):
    """One process's DP-SGD steps (noise 0) on the union of the ranks' batches, each divided by BATCH per rank
    with a batch in it: the weights after them, from rank 0's starting weights."""
    rng = np.random.default_rng(0)  # dprun.py's union data
    samples = 80 * len(results) + len(results) - 1
    x = rng.standard_normal((samples, 6)).astype(np.float32)
    x[:, 0] = np.arange(samples) / 256
    y = rng.integers(0, 3, samples)
    net = Sequential(Linear(6, 16), Activation("relu"), Linear(16, 3))
    net.setState({key: np.array(values, np.float32) for key, values in start.items()})
    optimizer = DifferentialPrivacy(SGD(learnRate=0.5), CLIP, 0.0).setupOn(net)
    cost = CrossEntropy()
    for s, ranks in enumerate(participants(results)):
        ids = [i for r in ranks for i in results[r]["steps"][s]]
        optimizer.zeroGradParams()
        if ids:
            _, grad = optimizer.clippedOutputGrad(net, cost, net(toDevice(x[ids])), toDevice(y[ids]))
            net.backward(grad, updGrad=False)
        optimizer.expectBatch(BATCH * len(ranks))
        optimizer.update()
    return net.getState()


@needsMpi
@pytest.mark.parametrize("ranks,macroBatchSize", [(2, 40), (3, 40), (2, 81)])
def test_noiseless_job_steps_are_one_process_steps_on_the_union_of_the_batches(tmp_path, ranks, macroBatchSize):
    results = job(tmp_path, ranks, "union", str(macroBatchSize))
    assert all(rank["weights"] == results[0]["weights"] for rank in results)  # the same step everywhere
    assert len({rank["updates"] for rank in results}) == 1
    # one rate for the job: batchsize over the largest macrobatch of any rank (81: rank 0's shard holds 80)
    largest = min(macroBatchSize, 81)
    assert all(rank["rate"] == BATCH / largest for rank in results)
    assert any(0 not in ranks for ranks in participants(results))  # rank 0 sat out steps
    reference = unionSteps(results, results[0]["start"])
    for key, ary in reference.items():
        np.testing.assert_allclose(np.array(results[0]["weights"][key], np.float32), ary, rtol=1e-5, atol=1e-6,
                                   err_msg=key)


@needsMpi
def test_the_noise_is_added_once_per_step_by_rank_0_also_in_steps_it_sits_out(tmp_path):
    results = job(tmp_path, 2, "noise")
    assert results[1]["weights"] == results[0]["weights"]
    steps = participants(results)
    assert any(0 not in ranks for ranks in steps)
    # zero data: each step moves the weights by the noise alone, learnRate * sigma * C / (BATCH per rank with a
    # batch): once, not sqrt(2) times that (6000 weights: the sample deviation is within 5% by far)
    for s, (ranks, move) in enumerate(zip(steps, results[0]["moves"])):
        want = 1.0 * 2.0 * 0.5 / (BATCH * len(ranks))
        assert abs(move / want - 1) < 0.05, f"step {s}, ranks {ranks}: moved {move}, noise of {want}"


@needsMpi
def test_fit_over_a_job_accounts_epsilon_at_the_jobs_rate_on_every_rank(tmp_path):
    results = job(tmp_path, 2, "fit", "81")  # rank 0's shard holds 80 samples, rank 1's 81: one rate, 8 / 81
    assert all(rank["weights"] == results[0]["weights"] for rank in results)
    assert all(rank["epsilon"] == results[0]["epsilon"] and rank["rate"] == BATCH / 81 for rank in results)
    assert results[0]["updates"] == 2 * 11  # rank 1's 11 batches per epoch, rank 0 idle in the last
    assert results[0]["epsilon"][1] == pytest.approx(epsilon(22, BATCH / 81, 1.1, 1e-5), rel=1e-12)


@needsMpi
@pytest.mark.cuda
def test_a_private_job_makes_no_host_synchronisation_per_batch(tmp_path):
    for rank in job(tmp_path, 2, "syncs"):
        assert rank["25"]["steps"] * 5 == rank["5"]["steps"]  # 5 times the batches
        assert rank["25"]["syncs"] == rank["5"]["syncs"]


class Solo:
    """A stand-in for a job of one process (no MPI): its collectives leave everything as it is."""
    rank, size = 0, 1

    def allreduce(self, ary, op="sum"):
        return ary

    def broadcast(self, ary, root=0):
        return ary

    def allgather(self, value):
        return [value]

    def sum(self, value):
        return value


def test_a_one_process_job_takes_the_private_trainers_steps():
    """With one process DistributedTrainer's DP-SGD step is the Trainer's (noise included, same draws)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((90, 6)).astype(np.float32), rng.integers(0, 3, 90)
    states = []
    for make in (lambda *a, **k: Trainer(*a, **k), lambda *a, **k: DistributedTrainer(*a[:3], Solo(), **k)):
        setSeed(3)
        net = Sequential(Linear(6, 16), Activation("relu"), Linear(16, 3))
        optimizer = DifferentialPrivacy(SGD(learnRate=0.5), CLIP, 1.0).setupOn(net)
        trainer = make(net, CrossEntropy(), optimizer, batchsize=BATCH, poisson=True)
        trainer.trainFromHost(x, y, macroBatchSize=40)
        states.append((net.getState(), optimizer.steps, trainer.sampleRate))
    (private, steps, rate), (distributed, distributedSteps, distributedRate) = states
    assert steps == distributedSteps and rate == distributedRate == BATCH / 40
    for key, ary in private.items():
        np.testing.assert_allclose(distributed[key], ary, rtol=1e-6, atol=1e-7, err_msg=key)


def test_a_process_told_to_leave_the_noise_out_does_so_for_that_step_only():
    net = Sequential(Linear(50, 40, useBias=False))
    optimizer = DifferentialPrivacy(SGD(learnRate=1.0), 1.0, 1.0, expectedBatchSize=2).setupOn(net)
    moves = []
    for noisy in (False, None):  # None: no expectBatch before the step
        before = toHost(net.getVariables()["0.W"].data).copy()
        if noisy is not None:
            optimizer.expectBatch(2, noisy=noisy)
        optimizer.zeroGradParams()
        optimizer.update()
        moves.append(float((toHost(net.getVariables()["0.W"].data) - before).std()))
    assert moves[0] == 0.0 and abs(moves[1] / 0.5 - 1) < 0.1  # sigma C / 2 over 2000 draws


def test_poisson_without_privacy_and_mixed_precision_with_it_are_refused():
    net = Sequential(Linear(4, 3))
    optimizer = SGD().setupOn(net)
    with pytest.raises(ValueError, match="poisson=True needs a DifferentialPrivacy optimizer"):
        DistributedTrainer(net, CrossEntropy(), optimizer, Solo(), poisson=True)
    with pytest.raises(ValueError, match="precision='float16' is not supported"):
        DistributedTrainer(net, CrossEntropy(), DifferentialPrivacy(SGD(), 1.0, 1.0).setupOn(net), Solo(),
                           precision="float16")
    with pytest.raises(ValueError, match="mixed precision is not supported"):
        DifferentialPrivacy(SGD().setupOn(net, precision="float16"), 1.0, 1.0)
