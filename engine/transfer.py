"""Uploader: macrobatches from host to device, the next copy overlapping the current compute.

CPU backend: the host arrays are the device arrays; staging only converts dtypes.

CUDA backend: two slots, each a pinned (page-locked) host buffer and a device buffer per array.
Macrobatch k uses slot k % 2. ``stage`` (run in the reader thread) copies host data into the
pinned buffer, converting its dtype, once the slot's previous copy has left it. ``iterate`` queues
the copy of macrobatch k+1 on a dedicated stream before handing out macrobatch k, so the DMA runs
while k trains; the compute stream waits on an event for each copy, and each copy waits on an event
for the compute that last used its device buffer. The host never waits on the device here. Device
buffers are allocated on the device that was current where the Uploader was made (CUDA's current device
is per host thread: the reader thread's own would be GPU 0 whatever device the process chose). Device
buffers that do not fit raise DeviceMemoryError, which names the largest macroBatchSize that would.
"""
import os
from contextlib import contextmanager

import numpy

from .backend import isCuda, xp
from .errors import DeviceMemoryError

if isCuda:
    import cupyx


SLOTS = 2  # device buffers per array: the macrobatch training and the next one being copied


class Uploader:
    """capacity: the largest number of samples in one macrobatch."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.slots = [{} for _ in range(SLOTS)]
        self.staged = 0
        if isCuda:
            self.device = xp.cuda.Device()
            self.stream = xp.cuda.Stream(non_blocking=True)

    def stage(self, blocks, dtypes):
        """Make the host blocks (one macrobatch: data, and target if any) ready for upload, each in the
        matching dtype of dtypes (None keeps its own). Returns what ``iterate`` expects."""
        if not isCuda:
            return [numpy.ascontiguousarray(b, dtype=d) for b, d in zip(blocks, dtypes)]
        index, self.staged = self.staged % SLOTS, self.staged + 1
        slot = self.slots[index]
        if "copied" in slot:
            slot["copied"].synchronize()  # the previous copy from this pinned buffer has finished
        views = []
        with self.device:  # the reader thread's current device is GPU 0, not necessarily the process's
            for i, (block, dtype) in enumerate(zip(blocks, dtypes)):
                dtype = numpy.dtype(dtype or block.dtype)
                shape = (self.capacity,) + tuple(block.shape[1:])
                pinned = slot.get(("pinned", i))
                if pinned is None or pinned.shape != shape or pinned.dtype != dtype:
                    try:
                        slot[("device", i)] = xp.empty(shape, dtype)
                    except xp.cuda.memory.OutOfMemoryError as error:
                        raise self.outOfMemory(blocks, dtypes) from error
                    pinned = slot[("pinned", i)] = cupyx.empty_pinned(shape, dtype)
                view = pinned[:block.shape[0]]
                view[...] = block
                views.append(view)
        return index, views

    def outOfMemory(self, blocks, dtypes):
        """The DeviceMemoryError for a failed device buffer allocation. The buffers this Uploader already
        holds count as free: a smaller macroBatchSize would replace them."""
        sampleBytes = sum(numpy.dtype(dtype or block.dtype).itemsize * int(numpy.prod(block.shape[1:]))
                          for block, dtype in zip(blocks, dtypes))
        held = sum(slot[("device", i)].nbytes for slot in self.slots for i in range(len(blocks))
                   if ("device", i) in slot)
        return deviceMemoryError(self.capacity, sampleBytes, freeMemoryBytes() + held)

    def upload(self, staged):
        """Queue the copies of a staged macrobatch on the upload stream; return its device arrays."""
        index, views = staged
        slot = self.slots[index]
        if "computed" in slot:
            self.stream.wait_event(slot["computed"])  # the last macrobatch in this slot is done with it
        arrays = []
        for i, view in enumerate(views):
            device = slot[("device", i)][:view.shape[0]]
            device.set(view, stream=self.stream)
            arrays.append(device)
        slot["copied"] = self.stream.record()
        return index, arrays

    def iterate(self, staged):
        """Device arrays of each staged macrobatch in order, the next one's copy queued before the
        current one is handed out. An error in getting the next one (a failed read, bad data) is raised
        after the current one has been handled, as on the CPU backend: no good macrobatch is skipped."""
        if not isCuda:
            yield from staged
            return
        compute = xp.cuda.get_current_stream()
        source = iter(staged)
        following = next(source, None)
        pending = None if following is None else self.upload(following)
        while pending is not None:
            index, arrays = pending
            failure = None
            try:
                following = next(source, None)
                pending = None if following is None else self.upload(following)
            except Exception as error:  # noqa: BLE001 - raised again below, once macrobatch k is handled
                failure, pending = error, None
            compute.wait_event(self.slots[index]["copied"])
            yield arrays
            self.slots[index]["computed"] = compute.record()
            if failure is not None:
                raise failure


def deviceMemoryError(macroBatchSize, sampleBytes, freeBytes):
    """The DeviceMemoryError for macroBatchSize samples of sampleBytes each (data and target together)
    when freeBytes of device memory are free: it names the bytes needed and the largest macroBatchSize
    whose upload buffers fit."""
    needBytes = SLOTS * macroBatchSize * sampleBytes
    fits = fittingMacroBatchSize(sampleBytes, freeBytes)
    advice = (f"The largest macroBatchSize whose buffers fit is {fits}; choose less, since the model's "
              "activations and gradients need device memory too" if fits > 0 else
              "Not even one sample fits: free device memory (other arrays, other processes) first")
    return DeviceMemoryError(
        f"macroBatchSize {macroBatchSize} does not fit in device memory: its {SLOTS} upload buffers need "
        f"{gib(needBytes)} ({SLOTS} x {macroBatchSize} samples x {sampleBytes} bytes), but {gib(freeBytes)} "
        f"is free. {advice}")


_outOfMemory = (xp.cuda.memory.OutOfMemoryError,) if isCuda else ()


@contextmanager
def batchMemoryAdvice(batchsize, macroBatchSize):
    """Turns CuPy's OutOfMemoryError in the batches of a macrobatch into a DeviceMemoryError that says what
    to lower: the batch's own work did not fit beside the resident macrobatch."""
    try:
        yield
    except _outOfMemory as error:
        raise DeviceMemoryError(
            f"device memory ran out in a batch of {batchsize} samples, with a macrobatch of {macroBatchSize} samples "
            "resident; lower batchsize or macroBatchSize, or pass macroBatchSize='auto', which leaves room for one "
            f"batch of the model ({error})") from error



def freeMemoryBytes():
    """Bytes free where macrobatches live: device memory on CUDA, available RAM on the CPU backend."""
    if isCuda:
        return int(xp.cuda.runtime.memGetInfo()[0])
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fittingMacroBatchSize(sampleBytes, freeBytes):
    """The largest macroBatchSize whose upload buffers (all slots) fit in freeBytes."""
    return freeBytes // (SLOTS * sampleBytes)


def gib(nbytes):
    return f"{nbytes / 2 ** 30:.2f} GiB ({nbytes} bytes)"
