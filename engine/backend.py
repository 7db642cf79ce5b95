"""The one place that decides which array module runs the math.

CuPy is used when it imports and sees a CUDA device; otherwise NumPy. The environment
variable ``MACROBATCH_BACKEND=cpu|cuda`` forces the choice (``cuda`` without a usable
device is an error, never a silent fallback). Every other file takes its array module
from here as ``xp``; nothing else imports cupy for device math. A process started by an MPI
launcher uses the GPU of its rank on the node (one GPU per process), chosen here, before
anything is allocated.
"""
import os

import numpy


class BackendError(RuntimeError):
    """The requested backend cannot be used on this machine."""


def _cudaModule():
    """Return (cupy, None) when CuPy has a usable device, else (None, reason)."""
    try:
        import cupy
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # ImportError, CUDARuntimeError (no driver), ...
        return None, f"{type(e).__name__}: {e}"
    if count == 0:
        return None, "no CUDA device found"
    cupy.cuda.Device(localRank() % count).use()
    return cupy, None


def localRank():
    """This process's rank among the processes an MPI launcher started on this node (0 without one)."""
    for var in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def _select():
    choice = os.environ.get("MACROBATCH_BACKEND", "").strip().lower()
    if choice not in ("", "cpu", "cuda"):
        raise BackendError(f"MACROBATCH_BACKEND must be 'cpu' or 'cuda', got {choice!r}")
    if choice == "cpu":
        return numpy
    cupy, reason = _cudaModule()
    if cupy is None and choice == "cuda":
        raise BackendError(f"MACROBATCH_BACKEND=cuda, but CuPy cannot use a CUDA device ({reason}); "
                           "install the extra (pip install macrobatch[cuda12]) or unset the variable")
    return cupy or numpy


xp = _select()
isCuda = xp is not numpy
name = "cuda" if isCuda else "cpu"


def toDevice(ary, dtype=None):
    """Copy a host array (or anything NumPy can read) to the device, C-contiguous, as dtype."""
    if isCuda:
        return xp.ascontiguousarray(xp.asarray(ary, dtype=dtype))
    return numpy.ascontiguousarray(ary, dtype=dtype)


def toHost(ary):
    """Return a NumPy array for a device array (a no-op on the CPU backend)."""
    return ary.get() if isCuda and isinstance(ary, xp.ndarray) else numpy.asarray(ary)


def isDeviceArray(ary):
    """True for arrays that live where the backend computes (on the CPU: any ndarray)."""
    return isinstance(ary, xp.ndarray)


def checkOnDevice(ary, where):
    """TypeError naming where, unless ary lives on the device: on CuPy a NumPy array given to device code
    would otherwise fail deep inside a kernel call. A no-op on the CPU backend, where host is device."""
    if isCuda and not isinstance(ary, xp.ndarray):
        raise TypeError(f"{where}: expected a device array (cupy.ndarray), got {type(ary).__module__}."
                        f"{type(ary).__name__}; move host data with macrobatch.engine.toDevice")


def synchronize():
    """Wait for all queued device work (a no-op on the CPU backend)."""
    if isCuda:
        xp.cuda.get_current_stream().synchronize()
