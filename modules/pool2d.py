"""Pool2D: the window geometry, input check and CPU work split shared by the 2D pooling modules."""
from ..engine.im2col import buffer, checkImageShape, poolGeometry
from ..engine.parallel import minPart, runParallel, splitRanges
from .module import Module


class Pool2D(Module):
    """Base of MaxPool2D and AvgPool2D: size, stride and pad take an int or an (h, w) pair; stride
    defaults to size (windows side by side); pad is at most half the window, so no window is all
    padding. Inputs are (batch, maps, H, W)."""

    def __init__(self, size=2, stride=None, pad=0, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.size, self.stride, self.pad = poolGeometry(size, stride, pad)
        self.overlap = any(s < k for s, k in zip(self.stride, self.size))
        self.buffers = {}

    def checkDataShape(self, shape):
        checkImageShape(shape, self.size, self.pad, self.describe())

    def tiles(self, insize):
        """Whether the windows cover every pixel of the padded (H, W) image exactly once, so that a
        backward pass writing every window leaves no pixel to zero beforehand."""
        return all(s == k and (n + 2 * p) % k == 0 for n, k, s, p in zip(insize, self.size, self.stride, self.pad))

    def scratch(self, key, shape, dtype):
        """A CPU work buffer kept between calls of the same shape and dtype; never returned to the caller."""
        self.buffers[key] = buffer(self.buffers.get(key), shape, dtype)
        return self.buffers[key]

    @staticmethod
    def splitBatch(fn, *arrays):
        """fn(*parts) for the parts of arrays (each (batch, ...), or a list of such) over disjoint ranges
        of samples, on the CPU cores: fn writes its parts in place. The first array sets the work per
        sample, so small batches stay on one core."""
        lead = arrays[0][0] if isinstance(arrays[0], list) else arrays[0]
        n = lead.shape[0]
        perSample = max(1, lead.size // max(n, 1))
        ranges = splitRanges(n, minimum=-(-minPart // perSample))

        def part(a, b):
            fn(*([v[a:b] for v in ary] if isinstance(ary, list) else ary[a:b] for ary in arrays))

        runParallel(part, ranges)
