"""macroBatchSize="auto": the largest macrobatch whose buffers fit beside one batch of the model's work.

On the GPU a macrobatch lives in device memory twice over (the Uploader's two slots: the one training and
the next one being copied); on the CPU backend it lives in RAM three times over (the HostReader keeps the
block just finished, the one handed out and the one being read). Besides the buffers, training one batch
needs the activations every layer keeps for its backward, their gradients and the lowering workspaces
(im2col columns): estimated as ``workFactor`` times the bytes of all layer outputs of one dry, eval-mode
forward pass on a batch of zeros (eval mode, so that no running statistic moves and no random number is
drawn). Of the memory free now (device memory plus CuPy's pooled free blocks, or available RAM), only
``safety`` of it is planned with: allocator fragmentation, cuBLAS workspaces and other processes need room.
"""
import gc

import numpy

from ..costs.multi import targetArrays
from ..engine.backend import isCuda, xp
from ..engine.errors import DeviceMemoryError
from ..engine.transfer import SLOTS, freeMemoryBytes, gib

safety = 0.8
workFactor = 3
hostCopies = 3  # blocks the HostReader keeps alive at once on the CPU backend


def autoMacroBatchSize(mod, batchsize, dataDtype, data, target=None, say=print):
    """The macroBatchSize to walk data (and target: an array or a list of them) with in batches of batchsize, as the module docstring
    says; says what it chose and why (say=None: silent). DeviceMemoryError if not even one batch fits."""
    sampleBytes = numpy.dtype(dataDtype).itemsize * _perSample(data)
    for ary in targetArrays(target):  # uploaded in the cost's dtype: at most 8 bytes per value (int64 / float64)
        sampleBytes += max(numpy.dtype(ary.dtype).itemsize, 4) * _perSample(ary)
    gc.collect()  # arrays kept only by garbage cycles (the traceback of an earlier failure, say) are free too
    work = batchWorkBytes(mod, (batchsize,) + tuple(data.shape[1:]), dataDtype)
    copies = SLOTS if isCuda else hostCopies
    free = freeMemoryBytes() + _pooledFreeBytes()
    budget = int(free * safety) - work - batchsize * sampleBytes  # the last term: the shuffled batch buffers
    fits = max(budget, 0) // (copies * sampleBytes)
    where = "device memory" if isCuda else "RAM"
    if fits < batchsize:
        raise DeviceMemoryError(f"macroBatchSize auto: not even one batch of {batchsize} fits: {gib(free)} of {where} "
                                f"is free, one batch of the model needs about {gib(work)}; lower batchsize or free "
                                "memory first")
    size = min(fits - fits % batchsize, data.shape[0])  # whole batches, or all of the data
    if say is not None:
        say(f"macrobatch: macroBatchSize auto = {size} samples"
            + (" (all of the data)" if size == data.shape[0] else "") + f": {gib(free)} of {where} free, "
            f"{int(safety * 100)}% of it planned with; one batch of {batchsize} needs about {gib(work)} "
            f"({workFactor} x its activations); {copies} buffers of {sampleBytes} bytes per sample")
    return size


def batchWorkBytes(mod, shape, dtype):
    """workFactor times the bytes of every layer's output in one eval-mode forward pass on zeros of shape;
    the modules' modes are restored and their outputs released afterwards."""
    modules = [m for _, m in mod.namedModules()]
    try:
        with mod.evaluating():
            mod(xp.zeros(shape, dtype=dtype))
        outputs = sum(_nbytes(m.data) for m in modules if not m.children())
    finally:
        for m in modules:
            m.data = m.inData = None
    return workFactor * outputs + int(numpy.prod(shape)) * numpy.dtype(dtype).itemsize


def _nbytes(out):
    if out is None:
        return 0
    if isinstance(out, (list, tuple)):
        return sum(_nbytes(o) for o in out)
    return int(out.nbytes)


def _perSample(ary):
    return int(numpy.prod(ary.shape[1:], dtype=numpy.int64))


def _pooledFreeBytes():
    """Bytes CuPy's memory pool holds but does not use: free to CuPy, though the driver counts them used."""
    return int(xp.get_default_memory_pool().free_bytes()) if isCuda else 0
