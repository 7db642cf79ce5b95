"""LabelStats: per-class counts of integer labels and how they are ordered, gathered block by block.

Order matters to trainFromHost: a macrobatch is one contiguous slice of the file, so in a file sorted by
class each macrobatch holds a few classes, and shuffling inside macrobatches cannot mix them. The measure
is the length of the run of equal labels a sample sits in, averaged over samples (sum of squared run
lengths / n): in random order a sample of a class with share p sits in a run of (1 + p) / (1 - p) on
average; in a file sorted even in part, in runs of hundreds."""
import numpy

from ..engine.errors import LabelError

sortedRatio = 4  # runs this many times longer than chance: an order, not an accident of sampling
sortedRun = 8  # and longer than this many samples: shorter runs are mixed by any batch


class LabelStats:
    def __init__(self):
        self.counts, self.last, self.openRun, self.squares = {}, None, 0, 0.0

    def add(self, block):
        block = numpy.asarray(block).ravel()
        if block.size == 0:
            return
        values, counts = numpy.unique(block, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist()):
            self.counts[int(value)] = self.counts.get(int(value), 0) + count
        starts = numpy.flatnonzero(block[1:] != block[:-1]) + 1
        lengths = numpy.diff(numpy.concatenate([[0], starts, [block.size]])).astype(numpy.float64)
        if self.last is not None and block[0] == self.last:
            lengths[0] += self.openRun  # the run open at the end of the last block goes on
        else:
            self.squares += float(self.openRun) ** 2
        self.squares += float(numpy.dot(lengths[:-1], lengths[:-1]))
        self.openRun, self.last = lengths[-1], block[-1]

    @property
    def samples(self):
        return sum(self.counts.values())

    @property
    def meanRun(self):
        """The length of the run of one label a sample sits in, averaged over the samples."""
        return (self.squares + float(self.openRun) ** 2) / self.samples if self.samples else 0.0

    @property
    def chanceRun(self):
        """meanRun of the same labels in random order."""
        shares = numpy.array(list(self.counts.values()), numpy.float64) / max(1, self.samples)
        shares = shares[shares < 1]
        return float(numpy.sum(shares * (1 + shares) / (1 - shares))) if shares.size else 0.0

    @property
    def isSorted(self):
        """Runs far longer than chance (and long enough to matter: more than a few samples)."""
        return len(self.counts) > 1 and self.meanRun > max(sortedRatio * self.chanceRun, sortedRun)

    def sortedNote(self, name):
        return (f"{name} come in runs of one class (a sample's run: {self.meanRun:.0f} samples on average; "
                f"shuffled, about {self.chanceRun:.1f}): each contiguous macrobatch then holds only a few classes, "
                "which shuffling inside it cannot mix. Shuffle the file once: macrobatch convert FILE --shuffle "
                "--out shuffled.h5")


def labelStats(labels, name, chunk=1 << 20):
    """LabelStats of a 1-D label array or h5py Dataset, read in bounded chunks; labels that are not
    non-negative integers are refused naming what they are and how to map them."""
    kind = labels.dtype.kind
    if kind in "SUOa" or kind not in "biuf":
        what = "strings or objects" if kind in "SUOa" else f"values of dtype {labels.dtype}"
        raise LabelError(f"{name}: labels must be integer class indices 0..K-1, got {what}; map class names to "
                         "indices with numpy.unique(labels, return_inverse=True), or let macrobatch convert do it")
    if kind == "f":
        raise LabelError(f"{name}: labels must be integer class indices 0..K-1, got {labels.dtype}; store them as "
                         "integers (labels.astype(numpy.int64) if they are whole numbers)")
    if len(labels.shape) != 1:
        raise LabelError(f"{name}: labels must be one class index per sample, got shape {labels.shape}")
    stats = LabelStats()
    for start in range(0, labels.shape[0], chunk):
        stats.add(labels[start:start + chunk])
    if stats.counts and min(stats.counts) < 0:
        raise LabelError(f"{name}: labels must be class indices 0..K-1, found {min(stats.counts)}")
    return stats
