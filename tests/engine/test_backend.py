"""Backend choice: NumPy without a device, forced by MACROBATCH_BACKEND, a clear error for a missing GPU."""
import os
import subprocess
import sys

import numpy as np
import pytest

from macrobatch.engine import backend


def runPython(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_cpu_is_forced_by_environment_variable():
    out = runPython("from macrobatch.engine import backend; print(backend.name, backend.xp.__name__)",
                    MACROBATCH_BACKEND="cpu")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cpu", "numpy"]


def test_unknown_backend_name_is_a_clear_error():
    out = runPython("import macrobatch", MACROBATCH_BACKEND="tpu")
    assert out.returncode != 0 and "MACROBATCH_BACKEND must be 'cpu' or 'cuda', got 'tpu'" in out.stderr


@pytest.mark.skipif(backend.isCuda, reason="this machine has a usable CUDA device")
def test_forcing_cuda_without_a_device_is_a_clear_error():
    out = runPython("import macrobatch", MACROBATCH_BACKEND="cuda")
    assert out.returncode != 0 and "MACROBATCH_BACKEND=cuda, but CuPy cannot use a CUDA device" in out.stderr


def test_unforced_choice_matches_device_availability():
    out = runPython("from macrobatch.engine import backend; print(backend.name)", MACROBATCH_BACKEND="")
    cupy, _ = backend._cudaModule()
    assert out.stdout.strip() == ("cuda" if cupy is not None else "cpu")


def test_to_device_and_back_round_trips_values_and_dtype():
    host = np.arange(6, dtype=np.float64).reshape(2, 3)
    dev = backend.toDevice(host, np.float32)
    assert backend.isDeviceArray(dev) and dev.dtype == np.float32 and dev.flags.c_contiguous
    np.testing.assert_array_equal(backend.toHost(dev), host.astype(np.float32))


@pytest.mark.cuda
def test_cuda_backend_uses_cupy_arrays():
    import cupy
    assert backend.xp is cupy and isinstance(backend.toDevice(np.ones(3)), cupy.ndarray)
