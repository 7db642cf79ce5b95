"""Elementwise NumPy work split over the CPU cores.

NumPy ufuncs release the GIL, so a long in-place elementwise chain (an optimizer step over millions
of weights) run on contiguous parts of its arrays in threads uses every core, as PyTorch's fused
CPU kernels do. Each element is computed by the same operations whatever the split, so results are
bit-identical to a single-threaded run.
"""
import os
from concurrent.futures import ThreadPoolExecutor

workers = max(1, int(os.environ.get("MACROBATCH_CPU_THREADS", os.cpu_count() or 1)))
minPart = 1 << 16  # below this many elements per part, thread hand-off costs more than it saves
_pool = None


def splitRanges(size, parts=workers, minimum=minPart):
    """Contiguous (start, stop) ranges covering range(size): at most parts of them, each of at least
    minimum elements (a single range when size is small)."""
    parts = max(1, min(parts, size // minimum))
    bounds = [size * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def runParallel(fn, argsList):
    """fn(*args) for every args in argsList, on the worker threads when there is more than one."""
    global _pool
    if len(argsList) == 1:
        fn(*argsList[0])
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="macrobatch-cpu")
    for future in [_pool.submit(fn, *args) for args in argsList]:
        future.result()
