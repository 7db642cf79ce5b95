"""CPU threads: macrobatch owns the cores, and the BLAS runs on one thread inside them.

NumPy ufuncs and OpenBLAS's GEMMs release the GIL, so work cut into parts run on threads uses every core,
as PyTorch's intra-op pool does. The BLAS keeps its own threads out of it on purpose: after every
multithreaded call OpenBLAS's workers spin for about 2^28 cycles (0.1 s, its THREAD_TIMEOUT) before they
sleep, so NumPy work on other threads right after a GEMM shares a core with a spinning thread. Measured on
2 cores (Intel Xeon): Adam's step on 1.86M weights took 10.0 ms right after a GEMM against 4.9 ms without
one. So on the CPU, unless the user set a BLAS thread variable (then the BLAS keeps what they set and the
GEMMs are not split), macrobatch limits NumPy's BLAS to one thread (threadpoolctl) and splits its GEMMs
(engine.gemm), its convolutions' chunks and its elementwise passes over ``workers`` threads of its own,
which sleep when idle. The caller's thread runs the first part itself.

Elementwise parts compute each element with the same operations whatever the split, so their results are
bit-identical to a single-threaded run; a GEMM split by rows or columns computes each element by the same
BLAS kernel, but sums of per-thread partial products (a convolution's weight gradient over chunks) depend on
the number of workers. ``workers`` threads (``MACROBATCH_CPU_THREADS``, default: every core) do it;
``setThreads`` changes that at run time, for processes that share a machine's cores.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits

from .backend import isCuda

#: Environment variables through which a user sets thread counts; setThreads leaves what they set alone.
threadVariables = ("MACROBATCH_CPU_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
workers = max(1, int(os.environ.get("MACROBATCH_CPU_THREADS", os.cpu_count() or 1)))
minPart = 1 << 16  # below this many elements per part, thread hand-off costs more than it saves
#: Whether macrobatch runs the BLAS on one thread and splits the GEMMs itself (see the module docstring).
ownsBlas = not isCuda and not any(name in os.environ for name in threadVariables[1:])
_pool = None
_inPart = threading.local()  # set while this thread runs a part: nested splits run inline


def _limitBlas():
    if ownsBlas:
        threadpool_limits(1, user_api="blas")


_limitBlas()


def setThreads(count):
    """Use count threads from now on for macrobatch's work on the CPU (the BLAS stays on one thread
    inside them), unless the user set MACROBATCH_CPU_THREADS. Returns the limits now in force:
    {"workers": n, "blas": 1 when macrobatch limits the BLAS, None when the user's variables do}."""
    global workers, _pool
    if "MACROBATCH_CPU_THREADS" not in os.environ:
        workers = max(1, int(count))
        if _pool is not None:
            _pool.shutdown()
            _pool = None
    _limitBlas()
    return {"workers": workers, "blas": 1 if ownsBlas else None}


def splitRanges(size, parts=None, minimum=minPart):
    """Contiguous (start, stop) ranges covering range(size): at most parts of them (default: workers),
    each of at least minimum elements (a single range when size is small)."""
    parts = max(1, min(workers if parts is None else parts, size // minimum))
    bounds = [size * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def inParallel():
    """Whether the calling thread runs a part of a split: work it splits again runs on it alone."""
    return getattr(_inPart, "active", False)


def runParallel(fn, argsList):
    """fn(*args) for every args in argsList: the first on the calling thread, the others on the worker
    threads (all inline when there is one part, or when called from inside a part)."""
    global _pool
    if len(argsList) == 1 or inParallel():
        for args in argsList:
            fn(*args)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, workers - 1), thread_name_prefix="macrobatch-cpu")
    futures = [_pool.submit(_runPart, fn, args) for args in argsList[1:]]
    try:
        _runPart(fn, argsList[0])
    finally:
        for future in futures:
            future.result()


def _runPart(fn, args):
    _inPart.active = True
    try:
        fn(*args)
    finally:
        _inPart.active = False
