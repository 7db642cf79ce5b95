"""LabelRange: class labels checked on the device, the verdict read by the host only when it reads anyway."""
from ..engine.backend import toHost, xp
from ..engine.errors import LabelError


class LabelRange:
    """On the GPU, checking every batch's labels on the host would wait for the device every batch.
    ``screen`` instead folds a batch's smallest and largest label into two device scalars and returns
    the labels clipped into [0, classes), so that no index ever leaves its array; ``check`` reads the
    two scalars (one synchronisation, none when nothing was screened) and raises LabelError naming the
    most extreme bad label. Its owner (a cost, a metric) calls check where it reads the host anyway,
    and keeps raising until ``reset``: no reported figure ever includes a bad batch.

    owner: the name that starts the error message.
    """

    def __init__(self, owner):
        self.owner = owner
        self.low = xp.zeros((), dtype=xp.int64)
        self.high = xp.zeros((), dtype=xp.int64)
        self.classes = None  # the fewest classes screened against since the reset (a host int)

    def reset(self):
        self.low.fill(0)
        self.high.fill(0)
        self.classes = None

    def screen(self, labels, classes):
        """labels (an integer device array) clipped into [0, classes), their bounds kept; no host read."""
        # unsafe casting only matters for uint64 labels, whose mix with int64 NumPy makes float64
        xp.minimum(self.low, labels.min(), out=self.low, casting="unsafe")
        xp.maximum(self.high, labels.max(), out=self.high, casting="unsafe")
        self.classes = classes if self.classes is None else min(self.classes, classes)
        return xp.clip(labels, 0, classes - 1)

    def check(self):
        """Raise LabelError if a screened label lay outside [0, classes)."""
        if self.classes is None:
            return
        low, high = (int(bound) for bound in toHost(xp.stack([self.low, self.high])))
        bad = low if low < 0 else high if high >= self.classes else None
        if bad is not None:
            raise LabelError(f"{self.owner}: label {bad} is out of range for {self.classes} classes (labels not "
                             "given through prepareTarget are checked on the device, and reported at the next "
                             "read of the results)")
