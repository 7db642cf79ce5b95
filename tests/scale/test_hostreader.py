"""HostReader under faults: a read that raises surfaces in the caller with its traceback, and the reader
thread never outlives the walk (no hang, no leftover thread)."""
import threading
import traceback

import numpy as np

from macrobatch.costs import CrossEntropy
from macrobatch.handlers import Trainer
from macrobatch.handlers.hostreader import HostReader
from macrobatch.modules import Linear, Sequential
from macrobatch.optimizers import SGD

TIMEOUT = 20  # seconds; the walks here take milliseconds, so reaching this means a hang


class BrokenDisk:
    """A dataset-like array whose slicing raises from the ``failAt``-th read on (reads are counted)."""

    def __init__(self, ary, failAt=3):
        self.ary, self.failAt, self.reads = ary, failAt, 0
        self.shape, self.dtype = ary.shape, ary.dtype

    def __getitem__(self, key):
        self.reads += 1
        if self.reads >= self.failAt:
            raiseDiskError(key)
        return self.ary[key]


def raiseDiskError(key):
    raise OSError(f"simulated read error at {key}")


def readerThreads():
    return [t for t in threading.enumerate() if t.name.startswith("macrobatch-reader")]


def runWithTimeout(fn):
    """Run fn in a daemon thread; fail (instead of hanging the suite) if it does not end in TIMEOUT.
    Returns what fn returned or the exception it raised."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(TIMEOUT)
    assert not worker.is_alive(), f"the walk did not end within {TIMEOUT} s"
    return outcome


def spansOf(n, size):
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def test_error_on_third_macrobatch_reaches_the_caller_after_the_first_two_with_the_reader_traceback():
    data = np.arange(50, dtype=np.float32)
    seen = []

    def walk():
        for block in HostReader([BrokenDisk(data)], spansOf(50, 10), lambda b: b):
            seen.append(block.copy())

    outcome = runWithTimeout(walk)
    error = outcome.get("error")
    assert isinstance(error, OSError) and "simulated read error at slice(20, 30" in str(error)
    np.testing.assert_array_equal(np.concatenate(seen), data[:20])  # the two good macrobatches arrived
    frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
    assert "raiseDiskError" in frames and "walk" in frames  # the reader's frames and the caller's
    assert readerThreads() == []


def test_error_in_prepare_surfaces_like_a_read_error():
    def prepare(block):
        if block[0] == 20:
            raise ValueError("bad label in block")
        return block

    outcome = runWithTimeout(lambda: list(HostReader([np.arange(50)], spansOf(50, 10), prepare)))
    assert isinstance(outcome.get("error"), ValueError)
    assert readerThreads() == []


def test_caller_stopping_early_ends_the_reader_thread():
    reader = HostReader([np.arange(100)], spansOf(100, 10), lambda b: b)

    def walk():
        walker = iter(reader)
        next(walker)
        walker.close()  # what happens to the generator when the caller breaks out or raises

    runWithTimeout(walk)
    assert readerThreads() == []


def test_trainer_walk_raises_the_read_error_and_leaves_no_thread():
    rng = np.random.default_rng(0)
    data, labels = rng.standard_normal((500, 8)).astype(np.float32), rng.integers(0, 3, 500)
    net = Sequential(Linear(8, 3))
    optimizer = SGD(learnRate=0.1)
    optimizer.setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=50)
    finished = []
    outcome = runWithTimeout(lambda: trainer.trainFromHost(
        BrokenDisk(data), labels, macroBatchSize=100, random=False,
        onMacroBatchFinish=lambda t: finished.append(t.currMacroBatch)))
    assert isinstance(outcome.get("error"), OSError)
    assert finished == [0, 1]  # trained the two macrobatches read before the failure, then stopped
    assert readerThreads() == []


def test_failure_in_the_training_loop_ends_the_reader_thread_with_the_error_still_held():
    data, labels = np.zeros((500, 8), np.float32), np.zeros(500, np.int64)
    net = Sequential(Linear(8, 3))
    optimizer = SGD(learnRate=0.1)
    optimizer.setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=50)

    def stop(t):
        if t.currMacroBatch == 1:
            raise RuntimeError("callback failed")

    outcome = runWithTimeout(lambda: trainer.trainFromHost(data, labels, macroBatchSize=100, random=False,
                                                           onMacroBatchFinish=stop))
    assert isinstance(outcome.get("error"), RuntimeError)  # held here, with its traceback and frames
    assert readerThreads() == []
