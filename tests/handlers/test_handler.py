"""The Handler template: batch and macrobatch counts, every sample exactly once, input checks."""
import h5py
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from macrobatch.engine import setSeed, toDevice, toHost
from macrobatch.engine.errors import DatasetError, DtypeError, ShapeError
from macrobatch.handlers import Handler
from macrobatch.modules import Sequential


class Recorder(Handler):
    """Records the sample ids (column 0 of data) and targets of every batch it is given."""

    def __init__(self, batchsize=128, **kwargs):
        super().__init__(Sequential(), batchsize=batchsize, **kwargs)
        self.ids, self.targets, self.sizes, self.indices = [], [], [], []

    def handleBatch(self, batch, idx, state):
        self.ids.append(toHost(batch[0])[:, 0].astype(np.int64))
        if batch[1] is not None:
            self.targets.append(toHost(batch[1]).astype(np.int64))
        self.sizes.append(state["size"])
        self.indices.append(idx)

    def visited(self):
        return np.concatenate(self.ids)


def makeData(n, features=3):
    data = np.repeat(np.arange(n, dtype=np.float32)[:, None], features, axis=1)
    return data, np.arange(n, dtype=np.int64) * 2


@pytest.mark.parametrize("random", [False, True])
@pytest.mark.parametrize("n,batchsize,macro", [(1, 4, 4), (7, 3, 5), (1001, 32, 100), (1000, 128, 1000), (130, 128, 10000)])
def test_handle_from_host_visits_every_sample_exactly_once(n, batchsize, macro, random):
    data, target = makeData(n)
    rec = Recorder(batchsize)
    rec.handleFromHost(data, target, macroBatchSize=macro, random=random)
    visited = rec.visited()
    assert sorted(visited) == list(range(n))
    np.testing.assert_array_equal(np.concatenate(rec.targets), visited * 2)  # pairs stay together
    if not random:
        np.testing.assert_array_equal(visited, np.arange(n))


def test_counts_batches_and_macrobatches_with_partial_last_batches():
    data, target = makeData(1001)
    batches, macros = [], []
    rec = Recorder(32, onBatchFinish=lambda h: batches.append((h.currBatch, h.totalBatches)))
    rec.handleFromHost(data, target, macroBatchSize=100, random=False,
                       onMacroBatchFinish=lambda h: macros.append((h.currMacroBatch, h.totalMacroBatches)))
    # 10 full macrobatches of 100 = 3x32 + 4, then one of 1 sample
    assert rec.totalMacroBatches == 11 and macros == [(i, 11) for i in range(11)]
    assert rec.totalBatches == 10 * 4 + 1 and batches == [(i, 41) for i in range(41)]
    assert rec.sizes == [32, 32, 32, 4] * 10 + [1]
    assert rec.indices == list(range(41))


def test_shuffling_permutes_samples_within_and_order_of_macrobatches_reproducibly():
    data, target = makeData(1000)
    setSeed(7)
    first = Recorder(50)
    first.handleFromHost(data, target, macroBatchSize=200, random=True)
    setSeed(7)
    second = Recorder(50)
    second.handleFromHost(data, target, macroBatchSize=200, random=True)
    np.testing.assert_array_equal(first.visited(), second.visited())
    blocks = first.visited().reshape(5, 200)
    assert [sorted(b // 200) for b in blocks] == [[b[0] // 200] * 200 for b in blocks]  # each block is one macrobatch
    assert sorted(b[0] // 200 for b in blocks) == list(range(5))
    assert [b[0] // 200 for b in blocks] != list(range(5))  # macrobatch order shuffled (seed 7)
    assert not all((np.diff(b) > 0).all() for b in blocks)  # samples shuffled inside


@pytest.mark.parametrize("random", [False, True])
def test_h5py_dataset_input_gives_the_same_walk_as_a_numpy_array(tmp_path, random):
    data, target = makeData(777)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"], f["labels"] = data, target
    setSeed(3)
    fromArray = Recorder(64)
    fromArray.handleFromHost(data, target, macroBatchSize=200, random=random)
    setSeed(3)
    fromFile = Recorder(64)
    with h5py.File(tmp_path / "d.h5", "r") as f:
        fromFile.handleFromHost(f["data"], f["labels"], macroBatchSize=200, random=random)
    np.testing.assert_array_equal(fromArray.visited(), fromFile.visited())
    np.testing.assert_array_equal(np.concatenate(fromArray.targets), np.concatenate(fromFile.targets))


@pytest.mark.parametrize("random", [False, True])
def test_handle_walks_device_data_once_in_batches(random):
    data, target = makeData(300)
    rec = Recorder(128)
    rec.handle(toDevice(data), toDevice(target), random=random)
    assert sorted(rec.visited()) == list(range(300)) and rec.sizes == [128, 128, 44]
    assert rec.totalMacroBatches == 1


def test_data_without_target_passes_none():
    rec = Recorder(10)
    rec.handleFromHost(makeData(25)[0], random=False)
    assert rec.targets == [] and rec.sizes == [10, 10, 5]


def test_integer_host_data_is_converted_to_float32():
    got = []

    class Dtypes(Recorder):
        def handleBatch(self, batch, idx, state):
            got.append(batch[0].dtype)

    Dtypes(4).handleFromHost(np.zeros((8, 2), np.uint8), random=False)
    assert got == [np.float32, np.float32]


@pytest.mark.parametrize("batchsize", [0, -1, 2.5, True, "8"])
def test_bad_batchsize_is_refused(batchsize):
    with pytest.raises(ValueError, match="batchsize must be a positive integer"):
        Recorder(batchsize)


@pytest.mark.parametrize("macro", [0, 1.5, None])
def test_bad_macrobatch_size_is_refused(macro):
    with pytest.raises(ValueError, match="macroBatchSize must be a positive integer"):
        Recorder(4).handleFromHost(*makeData(10), macroBatchSize=macro)


def test_macrobatch_smaller_than_batch_is_refused():
    with pytest.raises(ValueError, match=r"macroBatchSize \(10\) must be at least batchsize \(16\)"):
        Recorder(16).handleFromHost(*makeData(100), macroBatchSize=10)


def test_data_and_target_of_different_lengths_are_refused():
    data, target = makeData(10)
    with pytest.raises(ShapeError, match="data has 10 samples but target has 9"):
        Recorder(4).handleFromHost(data, target[:9])


def test_empty_dataset_is_refused():
    with pytest.raises(DatasetError, match="empty"):
        Recorder(4).handleFromHost(np.zeros((0, 3), np.float32))


def test_non_numeric_data_is_refused():
    with pytest.raises(DtypeError, match="<U1"):
        Recorder(4).handleFromHost(np.array([["a"], ["b"]]))


def test_handle_refuses_host_only_containers(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"] = makeData(10)[0]
        with pytest.raises(TypeError, match="FromHost"):
            Recorder(4).handle(f["data"])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), batchsize=st.integers(1, 64), extra=st.integers(0, 300), random=st.booleans())
def test_property_every_sample_seen_exactly_once(n, batchsize, extra, random):
    data, target = makeData(n, features=1)
    rec = Recorder(batchsize)
    rec.handleFromHost(data, target, macroBatchSize=batchsize + extra, random=random)
    assert sorted(rec.visited()) == list(range(n))
    np.testing.assert_array_equal(np.concatenate(rec.targets), rec.visited() * 2)
