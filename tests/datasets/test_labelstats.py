"""LabelStats: class counts and label runs, the same read whole or block by block; sorted files found."""
import numpy as np
import pytest

from macrobatch.datasets.labelstats import LabelStats, labelStats
from macrobatch.engine.errors import LabelError


def test_counts_and_runs_are_the_same_whole_or_in_blocks():
    labels = np.random.default_rng(0).integers(0, 5, 1000)
    whole = labelStats(labels, "labels")
    blocks = labelStats(labels, "labels", chunk=37)
    assert whole.counts == blocks.counts == dict(zip(*map(list, np.unique(labels, return_counts=True))))
    starts = np.flatnonzero(np.diff(labels)) + 1
    runs = np.diff(np.concatenate([[0], starts, [len(labels)]]))
    assert whole.meanRun == pytest.approx(blocks.meanRun) and whole.meanRun == pytest.approx((runs ** 2).sum() / 1000)


def test_shuffled_labels_run_as_chance_and_sorted_ones_are_flagged():
    labels = np.random.default_rng(1).integers(0, 10, 5000)
    shuffled = labelStats(labels, "labels")
    assert not shuffled.isSorted and shuffled.meanRun == pytest.approx(shuffled.chanceRun, rel=0.1)
    ordered = labelStats(np.sort(labels), "labels")
    assert ordered.isSorted and ordered.meanRun == pytest.approx(np.sum(np.bincount(labels) ** 2) / 5000) and "macrobatch convert FILE --shuffle" in \
        ordered.sortedNote("labels")
    partly = np.concatenate([np.sort(labels[:2500]), labels[2500:]])  # half the file sorted: still runs
    assert labelStats(partly, "labels").isSorted


def test_one_class_and_empty_labels_are_not_called_sorted():
    assert not labelStats(np.zeros(100, np.int64), "labels").isSorted
    assert not LabelStats().isSorted


def test_labels_that_are_not_class_indices_are_refused():
    with pytest.raises(LabelError, match="got strings or objects"):
        labelStats(np.array(["a", "b"]), "labels")
    with pytest.raises(LabelError, match="found -1"):
        labelStats(np.array([0, -1]), "labels")
