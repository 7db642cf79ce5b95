"""HostReader: contiguous macrobatch reads from host data, one read ahead in a background thread."""
from concurrent.futures import ThreadPoolExecutor


class HostReader:
    """Iterates over ``spans`` (start, stop) of one or more host arrays — NumPy arrays, h5py Datasets,
    anything with ``shape`` and slicing — yielding ``prepare(*slices)`` for each span in order.

    Only contiguous slices are ever read (an HDF5 read of scattered rows is 50-100x slower), and the
    next span is read and prepared (dtype conversion, label checks) in a worker thread while the caller
    works on the current one. At most three spans are alive at once: the one the caller just finished
    (until it lets go of it), the one handed out and the one being read.

    An error raised while reading or preparing a span is raised again in the caller when it reaches
    that span, with the worker's traceback (naming the samples is the job of the arrays given). The worker
    never outlives the iteration: when the caller stops early or fails, the read in flight is waited
    for (at most one span) and the thread ends.
    """

    def __init__(self, arrays, spans, prepare):
        self.arrays, self.spans, self.prepare = arrays, spans, prepare

    def read(self, span):
        start, stop = span
        return self.prepare(*(ary[start:stop] for ary in self.arrays))

    def __iter__(self):
        if not self.spans:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="macrobatch-reader") as pool:
            pending = pool.submit(self.read, self.spans[0])
            for nextSpan in self.spans[1:]:
                current = pending.result()
                pending = pool.submit(self.read, nextSpan)
                yield current
            yield pending.result()
