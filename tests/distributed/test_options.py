"""DistributedTrainer's options in one process, with stand-in communicators (no MPI needed): the
synchronised BatchNorm's arithmetic, and the refusals of what a data-parallel job cannot do."""
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ModelFileError, ShapeError
from macrobatch.handlers.distributedtrainer import DistributedTrainer, StepShare
from macrobatch.handlers.fit import Fit
from macrobatch.modules import BatchNorm1D, BatchNorm2D, Linear, Sequential
from macrobatch.optimizers import SGD, GradientAccumulation


class Mirror:
    """A stand-in for a job of two processes holding the same batch: a sum over them doubles."""
    rank, size = 0, 2

    def allreduce(self, ary, op="sum"):
        ary *= 2
        return ary

    def broadcast(self, ary, root=0):
        return ary


def test_synchronised_batchnorm_over_two_equal_batches_is_one_batchnorm_over_both():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (4, 3, 5, 5))
    g = rng.standard_normal(x.shape)
    synced, plain = BatchNorm2D(3).cast(np.float64), BatchNorm2D(3).cast(np.float64)
    for mod in (synced, plain):
        mod.vars["scale"].data[...] = toDevice(np.array([0.5, 1.0, 2.0]))
    share = StepShare(Mirror())
    share.samples, share.total = 4, 8
    synced.sync = share
    y = toHost(synced(toDevice(x)))
    synced.zeroGradParams()
    dx = toHost(synced.backward(toDevice(g)))
    both = toHost(plain(toDevice(np.concatenate([x, x]))))
    plain.zeroGradParams()
    # each process's gradient is of its own batch-mean loss: half the doubled batch's mean loss
    dboth = toHost(plain.backward(toDevice(np.concatenate([g, g]) / 2)))
    np.testing.assert_allclose(y, both[:4], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, 2 * dboth[:4], rtol=1e-10, atol=1e-12)  # d(own loss)/dx = (1/share) dL/dx
    for key in ("mean", "var"):  # the unbiased variance over 8 samples, not 4
        np.testing.assert_allclose(toHost(synced.attrs[key]), toHost(plain.attrs[key]), rtol=1e-12)
    for key in ("scale", "bias"):  # this process's part, which the trainer weighs by its share (1/2)
        np.testing.assert_allclose(toHost(synced.vars[key].grad), toHost(plain.vars[key].grad), rtol=1e-10)


def test_a_synchronised_batch_of_one_value_per_map_over_all_processes_is_refused():
    mod = BatchNorm1D(3)
    share = StepShare(Mirror())
    share.samples, share.total = 1, 2
    mod.sync = share
    mod(toDevice(np.ones((1, 3), np.float32)))  # one sample here, two in the job: statistics exist
    share.total = 1
    with pytest.raises(ShapeError, match="more than one value per map"):
        mod(toDevice(np.ones((1, 3), np.float32)))


def net():
    mod = Sequential(Linear(4, 3))
    optimizer = SGD()
    optimizer.setupOn(mod)
    return mod, optimizer


def test_what_a_job_cannot_do_is_refused_at_construction():
    mod, optimizer = net()
    with pytest.raises(ValueError, match="GradientAccumulation is not supported"):
        DistributedTrainer(mod, CrossEntropy(), GradientAccumulation(optimizer, 2), Mirror())
    with pytest.raises(ValueError, match="kind must be one of"):
        DistributedTrainer(mod, CrossEntropy(), optimizer, Mirror(), reduceDtype="int8")
    mod64 = Sequential(Linear(4, 3)).cast(np.float64)
    optimizer64 = SGD()
    optimizer64.setupOn(mod64)
    with pytest.raises(DtypeError, match="reduceDtype='bfloat16' needs a float32 model, got float64"):
        DistributedTrainer(mod64, CrossEntropy(), optimizer64, Mirror(), reduceDtype="bfloat16")


def test_a_mid_epoch_checkpoint_of_another_process_count_is_refused_unchanged():
    mod, optimizer = net()
    fit = Fit(mod, CrossEntropy(), optimizer, seed=0)
    state = fit.getState()
    state.update(position=2, processes=2)
    before = mod.getState()
    with pytest.raises(ModelFileError, match=r"by a job of 2 process\(es\); resume it with 2 \(this job has 1\)"):
        fit.setState(state, source="ck.h5")
    assert all(np.array_equal(before[key], ary) for key, ary in mod.getState().items())
    state.update(position=0)  # at an epoch's end any number of processes may go on
    fit.setState(state)
