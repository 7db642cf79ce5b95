"""Training from an HDF5 file on disk against training on the same data already on the device, and
(CuPy only) the host-to-device upload rate of a macrobatch against a pinned-memory copy.

The file (float32 samples of 784 values, int32 labels) is written once into a folder under the
system temp dir and reused by later runs; it is written under a temporary name and renamed, so a
run killed while writing leaves nothing that looks complete. The page cache cannot be dropped here,
so the file is read from the OS cache: the comparison measures the read path (HDF5 slicing, dtype
conversion, upload, background prefetch), not the disk.
"""
import os
import statistics
import tempfile
import time

import h5py
import numpy

from macrobatch.engine import backend, toDevice

from models import specs
from workloads import OursWorkload, batchsize, classes

features = 784
writeChunk = 10000


def cachedFile(samples, seed):
    """Path of the benchmark's HDF5 file of samples rows, written if it is not there yet."""
    folder = os.path.join(tempfile.gettempdir(), "macrobatch-bench")
    path = os.path.join(folder, f"stream-{samples}x{features}-seed{seed}.h5")
    if os.path.exists(path):
        return path
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    rng = numpy.random.default_rng(seed)
    with h5py.File(tmp, "w") as f:
        data = f.create_dataset("data", (samples, features), dtype=numpy.float32)
        labels = f.create_dataset("labels", (samples,), dtype=numpy.int32)
        for start in range(0, samples, writeChunk):
            stop = min(start + writeChunk, samples)
            data[start:stop] = rng.standard_normal((stop - start, features), dtype=numpy.float32)
            labels[start:stop] = rng.integers(0, classes, size=stop - start, dtype=numpy.int32)
    os.replace(tmp, path)
    return path


def _epoch(run, seed):
    """Seconds of one epoch run(trainer) on a freshly seeded MLP (same weights every time)."""
    trainer = OursWorkload(specs["mlp"], seed).trainer
    backend.synchronize()
    start = time.perf_counter()
    run(trainer)
    backend.synchronize()
    return time.perf_counter() - start


def streamingRatios(samples, macroBatchSize, repeats, seed, log):
    """Epochs of the MLP with trainFromHost on the file and with train on the same data resident on the
    device, alternating (resident, from host) repeats times, for random=False and random=True. Reports
    median samples/s of each and the median of the paired ratios fromHost/resident."""
    path = cachedFile(samples, seed)
    results = {"file": path, "samples": samples, "macroBatchSize": macroBatchSize, "batchsize": batchsize,
               "repeats": repeats}
    with h5py.File(path, "r") as f:
        data, labels = f["data"], f["labels"]
        resident = (toDevice(data[...]), toDevice(labels[...]))  # also brings the whole file into the OS cache
        for random in (False, True):
            times = {"resident": [], "fromHost": []}
            for _ in range(repeats):
                times["resident"].append(_epoch(lambda t: t.train(*resident, random=random), seed))
                times["fromHost"].append(_epoch(lambda t: t.trainFromHost(
                    data, labels, macroBatchSize=macroBatchSize, random=random), seed))
            entry = {f"{name}SamplesPerSec": statistics.median(samples / s for s in seconds)
                     for name, seconds in times.items()}
            entry["ratio"] = statistics.median(r / h for r, h in zip(times["resident"], times["fromHost"]))
            entry["epochSeconds"] = times
            results["random" if random else "sequential"] = entry
            log(f"  streaming random={random}: resident {entry['residentSamplesPerSec']:,.0f}/s, "
                f"from host {entry['fromHostSamplesPerSec']:,.0f}/s, ratio {entry['ratio']:.2f}")
    return results


def uploadRates(rows, repeats, seed):
    """GB/s of macrobatch's toDevice of a (rows, 784) float32 pageable host block against a copy of the
    same block from pinned host memory (cupyx.empty_pinned + ndarray.set). CuPy backend only."""
    import cupy
    import cupyx
    block = numpy.random.default_rng(seed).standard_normal((rows, features), dtype=numpy.float32)
    pinned = cupyx.empty_pinned(block.shape, dtype=block.dtype)
    pinned[...] = block
    target = cupy.empty(block.shape, dtype=block.dtype)
    stream = cupy.cuda.get_current_stream()

    def seconds(copy):
        copy()
        stream.synchronize()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            copy()
            stream.synchronize()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    ours = seconds(lambda: toDevice(block))
    pinnedSeconds = seconds(lambda: target.set(pinned))
    return {"bytes": block.nbytes, "toDeviceGBps": block.nbytes / ours / 1e9,
            "pinnedGBps": block.nbytes / pinnedSeconds / 1e9, "ratio": pinnedSeconds / ours}
