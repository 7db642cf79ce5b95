"""CPU parallel split: exact coverage, and an optimizer step split over threads equals the whole-buffer step."""
import os

import numpy as np
import pytest

from macrobatch.engine import backend, parallel, toHost
from macrobatch.modules import Linear
from macrobatch.optimizers import Adam


@pytest.mark.parametrize("size,parts,minimum", [(0, 4, 8), (7, 4, 8), (100, 4, 8), (1 << 20, 3, 1 << 16), (10, 1, 1)])
def test_split_ranges_cover_everything_once_in_order(size, parts, minimum):
    ranges = parallel.splitRanges(size, parts, minimum)
    assert ranges[0][0] == 0 and ranges[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert len(ranges) <= parts and (len(ranges) == 1 or all(b - a >= minimum for a, b in ranges))


def test_run_parallel_calls_every_part():
    out = np.zeros(8)
    parallel.runParallel(lambda i: out.__setitem__(i, i + 1), [(i,) for i in range(8)])
    np.testing.assert_array_equal(out, np.arange(1, 9))


@pytest.mark.skipif(backend.isCuda, reason="the split is the NumPy path")
def test_split_optimizer_step_is_bit_identical_to_the_whole_buffer_step(monkeypatch):
    net = Linear(700, 500)  # 350k weights: split into 3 parts
    opt = Adam(learnRate=0.1).setupOn(net)
    (param, grad, state, scratch), = opt.slots
    monkeypatch.setattr(opt, "cpuParts", [[(param[a:b], grad[a:b], tuple(s[a:b] for s in state), scratch[a:b])
                                           for a, b in parallel.splitRanges(param.size, 3)]])
    assert len(opt.cpuParts[0]) == 3
    reference = Adam(learnRate=0.1)
    refParam, refState = toHost(param).copy(), tuple(np.zeros_like(toHost(param)) for _ in range(2))
    rng = np.random.default_rng(0)
    for _ in range(3):
        g = rng.standard_normal(param.shape).astype(np.float32)
        grad[...] = g
        opt.update()
        reference.steps += 1
        reference.updateCpu(refParam, g, refState, np.empty_like(refParam), reference.stepScalars())
    np.testing.assert_array_equal(toHost(param), refParam)


def test_the_caller_runs_the_first_part_and_nested_splits_run_inline():
    """The calling thread takes part 0; a split started inside a part runs on that part's thread (a pool of
    workers - 1 threads, each waiting on its own nested parts, would otherwise deadlock)."""
    import threading
    seen = {}

    def part(i):
        seen[i] = (threading.get_ident(), parallel.inParallel())
        parallel.runParallel(lambda j: seen.__setitem__((i, j), threading.get_ident()), [(0,), (1,)])

    parallel.runParallel(part, [(0,), (1,), (2,)])
    assert seen[0][0] == threading.get_ident() and all(seen[i][1] for i in range(3))
    assert all(seen[(i, j)] == seen[i][0] for i in range(3) for j in range(2))
    assert not parallel.inParallel()


def test_an_error_in_any_part_reaches_the_caller_after_every_part_ran():
    done = []

    def part(i):
        done.append(i)
        if i == 1:
            raise ValueError("part 1")

    with pytest.raises(ValueError, match="part 1"):
        parallel.runParallel(part, [(0,), (1,), (2,)])
    assert sorted(done) == [0, 1, 2]


@pytest.mark.skipif(backend.isCuda, reason="on CUDA macrobatch leaves the host BLAS alone")
def test_numpys_blas_runs_on_one_thread_when_macrobatch_owns_the_cores():
    from threadpoolctl import threadpool_info
    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert parallel.ownsBlas == (not any(v in os.environ for v in parallel.threadVariables[1:]))
    assert not parallel.ownsBlas or blas == [1] * len(blas)
