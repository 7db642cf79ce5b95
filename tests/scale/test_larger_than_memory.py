"""trainFromHost streams an HDF5 file larger than the memory the process may use: one epoch completes,
and the peak resident memory is set by macroBatchSize, not by the size of the dataset."""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

FEATURES = 1024
SAMPLE_BYTES = FEATURES * 4 + 8  # float32 data and an int64 label
FILE_BYTES = 3 * 2 ** 30  # the data alone
MACROBATCH = 16384  # 64 MiB of samples
BUDGET = 2 ** 29  # address space the child may map beyond its warmed-up baseline: 512 MiB
# Macrobatches alive at once: the one just trained (until the walk lets go of it), the one training and
# the one being read (HostReader); one more covers the model, the batch buffers and the allocator.
LIVE_MACROBATCHES = 4


def writeFile(path, samples):
    """Write ``data`` (samples x FEATURES float32) and ``labels`` in 64 MiB chunks, never holding the file
    in memory. One random block is repeated: what the rows contain does not matter here."""
    block = np.random.default_rng(0).standard_normal((MACROBATCH, FEATURES), dtype=np.float32)
    with h5py.File(path, "w") as f:
        data = f.create_dataset("data", (samples, FEATURES), np.float32)
        labels = f.create_dataset("labels", (samples,), np.int64)
        for start in range(0, samples, MACROBATCH):
            stop = min(start + MACROBATCH, samples)
            data[start:stop] = block[:stop - start]
            labels[start:stop] = np.arange(start, stop) % 4


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status and uses RLIMIT_AS")
def test_one_epoch_over_a_file_larger_than_the_memory_cap_with_peak_memory_set_by_macrobatch(tmp_path):
    if shutil.disk_usage(tmp_path).free < FILE_BYTES + 2 ** 30:
        pytest.skip("not enough free disk for the 3 GiB file")
    path = tmp_path / "big.h5"
    samples = FILE_BYTES // (FEATURES * 4)
    env = dict(os.environ, MACROBATCH_BACKEND="cpu", MACROBATCH_CPU_THREADS="1", OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # every BLAS thread maps its own stack and buffers
    try:
        writeFile(path, samples)
        child = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "streamrun.py"), str(path),
                                str(MACROBATCH), str(BUDGET)], env=env, capture_output=True, text=True, timeout=300)
    finally:
        path.unlink(missing_ok=True)
    assert child.returncode == 0, child.stderr[-3000:]
    run = json.loads(child.stdout.splitlines()[-1])
    print(json.dumps(run))  # the numbers, for -s runs and the report
    assert run["capBinds"], "the memory cap must stop the whole file from being allocated"
    assert run["fileBytes"] > 2 * run["limit"]  # the file is clearly larger than all the process may map
    assert run["seen"] == run["samples"] == samples  # a whole epoch, every sample once
    assert np.isfinite(run["loss"])
    bound = run["baseline"]["VmHWM"] + LIVE_MACROBATCHES * MACROBATCH * SAMPLE_BYTES
    assert run["VmHWM"] < bound, f"peak RSS {run['VmHWM'] / 2 ** 20:.0f} MiB, bound {bound / 2 ** 20:.0f} MiB"
