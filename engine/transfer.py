"""Uploader: macrobatches from host to device, the next copy overlapping the current compute.

CPU backend: the host arrays are the device arrays; staging only converts dtypes.

CUDA backend: two slots, each a pinned (page-locked) host buffer and a device buffer per array.
Macrobatch k uses slot k % 2. ``stage`` (run in the reader thread) copies host data into the
pinned buffer, converting its dtype, once the slot's previous copy has left it. ``iterate`` queues
the copy of macrobatch k+1 on a dedicated stream before handing out macrobatch k, so the DMA runs
while k trains; the compute stream waits on an event for each copy, and each copy waits on an event
for the compute that last used its device buffer. The host never waits on the device here.
"""
import numpy

from .backend import isCuda, xp

if isCuda:
    import cupyx


class Uploader:
    """capacity: the largest number of samples in one macrobatch."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.slots = [{}, {}]
        self.staged = 0
        if isCuda:
            self.stream = xp.cuda.Stream(non_blocking=True)

    def stage(self, blocks, dtypes):
        """Make the host blocks (one macrobatch: data, and target if any) ready for upload, each in the
        matching dtype of dtypes (None keeps its own). Returns what ``iterate`` expects."""
        if not isCuda:
            return [numpy.ascontiguousarray(b, dtype=d) for b, d in zip(blocks, dtypes)]
        index, self.staged = self.staged % 2, self.staged + 1
        slot = self.slots[index]
        if "copied" in slot:
            slot["copied"].synchronize()  # the previous copy from this pinned buffer has finished
        views = []
        for i, (block, dtype) in enumerate(zip(blocks, dtypes)):
            dtype = numpy.dtype(dtype or block.dtype)
            shape = (self.capacity,) + tuple(block.shape[1:])
            pinned = slot.get(("pinned", i))
            if pinned is None or pinned.shape != shape or pinned.dtype != dtype:
                pinned = slot[("pinned", i)] = cupyx.empty_pinned(shape, dtype)
                slot[("device", i)] = xp.empty(shape, dtype)
            view = pinned[:block.shape[0]]
            view[...] = block
            views.append(view)
        return index, views

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
        current one is handed out."""
        if not isCuda:
            yield from staged
            return
        compute = xp.cuda.get_current_stream()
        source = iter(staged)
        following = next(source, None)
        pending = None if following is None else self.upload(following)
        while pending is not None:
            index, arrays = pending
            following = next(source, None)
            pending = None if following is None else self.upload(following)
            compute.wait_event(self.slots[index]["copied"])
            yield arrays
            self.slots[index]["computed"] = compute.record()
