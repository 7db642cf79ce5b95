"""Rows: a contiguous range of rows of an array or h5py Dataset, read lazily, for the handlers' host walk."""


class Rows:
    """rows[start:stop] of ary without reading it: shape, dtype, and slices read from ary on demand.
    It lets a validation split be the tail of a file larger than memory (train --val-split)."""

    def __init__(self, ary, start, stop):
        if not 0 <= start <= stop <= ary.shape[0]:
            raise ValueError(f"rows {start}..{stop} outside 0..{ary.shape[0]}")
        self.ary, self.start, self.stop = ary, start, stop
        self.dtype = ary.dtype
        self.shape = (stop - start,) + tuple(ary.shape[1:])
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("Rows reads contiguous slices only")
        start, stop, _ = key.indices(self.shape[0])
        return self.ary[self.start + start:self.start + max(start, stop)]
