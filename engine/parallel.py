"""Elementwise NumPy work split over the CPU cores.

NumPy ufuncs release the GIL, so a long in-place elementwise chain (an optimizer step over millions
of weights) run on contiguous parts of its arrays in threads uses every core, as PyTorch's fused
CPU kernels do. Each element is computed by the same operations whatever the split, so results are
bit-identical to a single-threaded run.

``workers`` threads (``MACROBATCH_CPU_THREADS``, default: every core) do it; ``setThreads`` changes
that and the BLAS library's threads at run time, for processes that share a machine's cores.
"""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

#: Environment variables through which a user sets thread counts; setThreads leaves what they set alone.
threadVariables = ("MACROBATCH_CPU_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
workers = max(1, int(os.environ.get("MACROBATCH_CPU_THREADS", os.cpu_count() or 1)))
minPart = 1 << 16  # below this many elements per part, thread hand-off costs more than it saves
_pool = None


def setThreads(count):
    """Use count threads from now on, for macrobatch's elementwise work and, through threadpoolctl, for
    the BLAS NumPy loaded (GEMMs), unless the user set them with the environment variables above.
    Returns the thread limits now in force: {"workers": n, "blas": n or None when not limited}."""
    global workers, _pool
    if "MACROBATCH_CPU_THREADS" not in os.environ:
        workers = max(1, int(count))
        if _pool is not None:
            _pool.shutdown()
            _pool = None
    blas = None
    if not any(name in os.environ for name in threadVariables[1:]):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            warnings.warn("threadpoolctl is not installed (pip install macrobatch[mpi]): the BLAS keeps one "
                          "thread per core in every process; set OPENBLAS_NUM_THREADS to share the cores")
        else:
            threadpool_limits(count, user_api="blas")
            blas = int(count)
    return {"workers": workers, "blas": blas}


def splitRanges(size, parts=None, minimum=minPart):
    """Contiguous (start, stop) ranges covering range(size): at most parts of them (default: workers),
    each of at least minimum elements (a single range when size is small)."""
    parts = max(1, min(workers if parts is None else parts, size // minimum))
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
