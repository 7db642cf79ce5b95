"""Timing, memory and machine helpers of the benchmark.

Timing: blocks of work between two device synchronisations, timed with time.perf_counter, with the
contenders interleaved (A, B, A, B, ...) so that a slow spell of the machine hits both alike.

Memory: the bytes of arrays the backend allocates over some work (``ArrayMemory``), and the peak
resident set size (RSS) growth of a fresh child process (multiprocessing 'spawn') over
its own baseline, taken after imports and data creation. The peak is the kernel's VmHWM, reset at the
baseline through /proc/self/clear_refs; ``ru_maxrss`` is only the fallback where /proc lacks it,
because a spawned child inherits its parent's ru_maxrss (exec keeps the high-water mark of the
process it replaces), which would hide the child's own use under the parent's peak.
"""
import os
import platform
import resource
import statistics
import subprocess
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from multiprocessing import get_context

import numpy

from macrobatch.engine import backend


def timeBlock(work, sync):
    """Seconds taken by work(), with the device idle before and drained after."""
    sync()
    start = time.perf_counter()
    work()
    sync()
    return time.perf_counter() - start


def interleaved(contenders, repeats):
    """contenders: name -> (work, sync). Runs one timed block of each in turn, repeats times;
    returns name -> list of block seconds."""
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, (work, sync) in contenders.items():
            times[name].append(timeBlock(work, sync))
    return times


def summarise(seconds, samplesPerBlock):
    """Median samples/s over the blocks, with the spread ((max - min) / median of the rates)."""
    rates = [samplesPerBlock / s for s in seconds]
    median = statistics.median(rates)
    return {"samplesPerSec": median, "spread": (max(rates) - min(rates)) / median, "blockSeconds": seconds}


def pairedRatio(oursSeconds, theirSeconds):
    """Median over repetitions of (our rate / their rate) = their time / our time, pair by pair."""
    return statistics.median(t / o for o, t in zip(oursSeconds, theirSeconds))


# --- memory ---------------------------------------------------------------------------------------

def _statusKiB(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class PeakRss:
    """Peak RSS growth (bytes) of this process since ``start()``."""

    def start(self):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            self.method = "VmHWM"
            self.baseline = _statusKiB("VmRSS")
        except OSError:
            self.method = "ru_maxrss"
            self.baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def growth(self):
        peak = _statusKiB("VmHWM") if self.method == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(0, peak - self.baseline) * 1024


class ArrayMemory:
    """Bytes of the arrays allocated since ``start()``: ``held()`` still allocated now, ``peak()`` at
    most at once. NumPy reports its data buffers to tracemalloc, which counts them (and the few Python
    objects made meanwhile); CuPy allocates from its memory pool, whose blocks, emptied at the start,
    stay in it when freed, so its total bytes are the peak. (cudasim's pool keeps no freed blocks: there
    the peak is what is held at the end.)"""

    def start(self):
        backend.synchronize()
        if backend.isCuda:
            self.pool = backend.xp.get_default_memory_pool()
            self.pool.free_all_blocks()
            self.base = self.pool.used_bytes()
        else:
            tracemalloc.start()
            tracemalloc.reset_peak()
            self.base = tracemalloc.get_traced_memory()[0]
        return self

    def held(self):
        backend.synchronize()
        return (self.pool.used_bytes() if backend.isCuda else tracemalloc.get_traced_memory()[0]) - self.base

    def peak(self):
        backend.synchronize()
        return (self.pool.total_bytes() if backend.isCuda else tracemalloc.get_traced_memory()[1]) - self.base

    def stop(self):
        if not backend.isCuda:
            tracemalloc.stop()


def inChild(fn, *args):
    """fn(*args) in a fresh spawned interpreter; returns its result."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# --- the machine ----------------------------------------------------------------------------------

def _cpuinfoField(name):
    """The value of the first /proc/cpuinfo line for field name, or None (no such file or field)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpuModel():
    return _cpuinfoField("model name") or platform.processor() or platform.machine()


#: the vector extensions the report names, where the CPU has them (x86 flags as Linux spells them; ARM's features)
vectorFlags = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
               "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2")


def cpuVectorExtensions():
    """The vector extensions of vectorFlags the CPU reports (/proc/cpuinfo's flags, or features on ARM), in
    that order: they decide which GEMM kernels the BLAS and PyTorch pick, so ratios differ between machines
    with the same core count. None where /proc/cpuinfo is not readable."""
    flags = _cpuinfoField("flags") or _cpuinfoField("Features")
    if flags is None:
        return None
    present = set(flags.split())
    return [flag for flag in vectorFlags if flag in present]


def numpyBlas():
    """The BLAS NumPy was built against, from its build record (cheap; no thread probing)."""
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # NumPy < 2 has no mode="dicts"
        return "unknown"


def packageVersion(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def gitCommit(path):
    """Short commit of the checkout at path, with '+dirty' for uncommitted changes outside
    bench/results (which every run rewrites); None without git."""
    def git(*args):
        return subprocess.run(["git", "-C", path, *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--", ".", ":!bench/results")
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def threadEnv():
    """Thread-count variables the BLAS and OpenMP runtimes (and macrobatch's CPU workers) read, where set;
    unset, OpenBLAS and torch use every core."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MACROBATCH_CPU_THREADS")
    return {name: os.environ[name] for name in names if name in os.environ}
