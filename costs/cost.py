"""Cost: the error of a batch, its gradient, and the error accumulated over batches.

Sign convention: the gradient a cost returns is d loss / d pred, the loss's own gradient (not
its negative); optimizers subtract it. The batch loss is the mean over the batch's samples,
so the gradient carries the 1/batch factor and learning rates do not depend on batch size.

The accumulated error and counts stay on the device; ``getError`` and ``getMetrics`` are the
places that ask the host for numbers, so a training loop that does not print never synchronises.
Checks that would need the host mid-batch on the GPU (CrossEntropy's labels given without
prepareTarget) are made on the device instead and raise at those reads, or earlier at
``checkTargets``, which a training loop may call once per macrobatch.

Precision: a cost scores 16-bit predictions (and 16-bit float targets) in float32, as torch's autocast
runs softmax and losses in float32: the softmax, the logs, every reduction and the gradient are float32,
and the gradient goes back to the model in the prediction's dtype, multiplied first (in float32) by the
loss scale of float16 training when one is given, so small gradients are scaled before they are rounded.
"""
import numpy

from ..engine.backend import isDeviceArray, toDevice, toHost, xp
from ..engine.dtype import hostCastable, isHalf
from ..engine.errors import DtypeError, LabelError, PerSampleError, ShapeError


class Cost:
    """Subclasses implement ``calcError(pred, target)`` (returns the batch's mean loss as a 0-d
    device array, keeping what the gradient needs) and ``calcGrad(pred, target)`` (called right
    after calcError on the same batch), and ``prepareTarget`` for the targets they accept.

    Classifying costs also define ``countCorrect(pred, target)``, returning a device count of the
    batch's right predictions and how many predictions were judged (a host int or a device count);
    the base then accumulates both on the device and ``getMetrics`` reports ``accuracy``."""

    countCorrect = None
    # Whether the batch loss is the mean over the batch of one term per sample, each depending on that sample's
    # prediction alone (every cost here: CrossEntropy's row weights only scale the terms), so that sampleGrad
    # is defined. A cost that couples samples (a contrastive loss) leaves it False and is refused.
    samplewise = False

    def __init__(self):
        self.accumErr = xp.zeros((), dtype=xp.float64)
        self.accumCount = 0
        self.accumCorrect = xp.zeros((), dtype=xp.int64)
        self.accumJudged = xp.zeros((), dtype=xp.int64)

    def __call__(self, pred, target, gradScale=None):
        """Returns (error, grad) for a training batch and adds the error to the accumulator. gradScale: a
        0-d device float32 (a LossScaler's scale) the gradient is multiplied by before it is cast to the
        prediction's dtype, or None (or a host number: sampleGrad's batch size)."""
        wide, target = widen(pred), widen(target)
        error = self.validate(wide, target)
        return error, narrow(self.calcGrad(wide, target), pred, gradScale)

    def sampleGrad(self, pred, target, independent=False):
        """(error, grad) as a training call (the error accumulated), grad row i the gradient of sample i's own
        term of the batch loss, not divided by the batch: the batch loss is the mean of the terms, so it is
        batch times the batch gradient. A term is the sample's loss as the batch scores it: for CrossEntropy
        the mean over its rows (steps, positions) and, with weights or ignoreIndex, its rows' weighted losses
        over the batch's mean row weight (as Opacus's per-sample gradients of a mean-reduced loss).
        independent: terms that depend on their own sample alone, as DP-SGD's sensitivity bound needs (the
        batch's mean row weight depends on the other samples' labels): CrossEntropy's weighted terms are then
        over the sample's number of rows instead; the error is the same either way (independentTerms).
        PerSampleError for a cost that is not samplewise."""
        self.checkSamplewise()
        batch = (pred[0] if isinstance(pred, (list, tuple)) else pred).shape[0]
        error, grad = self(pred, target, gradScale=float(batch))
        return error, self.independentTerms(grad) if independent else grad

    def independentTerms(self, grad):
        """The sampleGrad gradient grad of the batch just scored, rescaled in place to terms that depend on their
        own sample alone; grad itself here, where every term already does."""
        return grad

    def checkSamplewise(self):
        """Raise PerSampleError unless the cost is samplewise (see the class attribute)."""
        if not self.samplewise:
            raise PerSampleError(f"{type(self).__name__} does not say that its loss is a mean of per-sample terms "
                                 "(samplewise), so it has no per-sample gradients")

    def validate(self, pred, target):
        """Returns the batch's mean error (a 0-d device array) and accumulates it; no gradient."""
        pred, target = widen(pred), widen(target)
        self.checkShapes(pred, target)
        error = self.calcError(pred, target)
        self.accumErr += error * self.errorWeight(pred, target)
        self.accumCount += pred.shape[0]
        self.accumulateMetrics(pred, target)
        return error

    def errorWeight(self, pred, target):
        """What the batch's error counts for in the accumulated error: its sample count here, which
        getError divides by; a cost that weighs batches otherwise overrides both."""
        return pred.shape[0]

    def checkShapes(self, pred, target):
        """Default for costs whose target is like the prediction: same shape and same dtype (a float
        target of another dtype would silently change the gradient's dtype on the CPU)."""
        if target.shape != pred.shape:
            raise ShapeError(f"{type(self).__name__}: target of shape {target.shape} does not match "
                             f"prediction of shape {pred.shape}")
        if target.dtype != pred.dtype:
            raise DtypeError(f"{type(self).__name__}: target of dtype {target.dtype} does not match prediction "
                             f"of dtype {pred.dtype}; convert targets with prepareTarget or astype")

    def prepareTarget(self, target):
        """Validate a block of targets (host or device array) and return it in the dtype the cost
        computes with. Called once per macrobatch, or once per call on device-resident data."""
        return target

    def floatTarget(self, target, dtype):
        """prepareTarget's conversion for real-valued targets: a C-contiguous array of dtype, left on
        the host or on the device where it was given."""
        mod = xp if isDeviceArray(target) else numpy
        target = mod.asarray(target)
        if not hostCastable(target.dtype, dtype):
            raise DtypeError(f"{type(self).__name__}: targets of dtype {target.dtype} cannot be used as {dtype}")
        return mod.ascontiguousarray(target, dtype=dtype)

    def rejectTargets(self, target, bad, message):
        """Raise LabelError for the first target where the boolean array bad is true; message is formatted
        with its value and index. Reads the host once when nothing is wrong."""
        if bad.any():
            flat = int(bad.reshape(-1).nonzero()[0][0])
            index = flat if target.ndim == 1 else tuple(int(k) for k in numpy.unravel_index(flat, target.shape))
            value = target.reshape(-1)[flat].item()
            raise LabelError(f"{type(self).__name__}: " + message.format(value=value, index=index))

    def calcError(self, pred, target):
        raise NotImplementedError

    def calcGrad(self, pred, target):
        raise NotImplementedError

    def accumulateMetrics(self, pred, target):
        """Add per-batch metric counts on the device (no sync): the accuracy of costs with countCorrect."""
        if self.countCorrect is not None:
            correct, judged = self.countCorrect(pred, target)
            self.accumCorrect += correct
            self.accumJudged += judged

    def checkTargets(self):
        """Raise what the device found wrong with the targets since the last reset (LabelError); reads
        the host only for costs that check on the device, and only if they did (none by default)."""

    def getError(self):
        """Mean error over the samples seen since the last reset (a host float; synchronises). Raises
        first what checkTargets raises."""
        self.checkTargets()
        return float(toHost(self.accumErr)) / self.accumCount if self.accumCount else float("nan")

    def getMetrics(self):
        """Host dict of everything the cost tracks: error, and accuracy for classifying costs."""
        metrics = {"error": self.getError()}
        if self.countCorrect is not None:
            correct, judged = toHost(xp.stack([self.accumCorrect, self.accumJudged]))
            metrics["accuracy"] = float(correct) / int(judged) if judged else float("nan")
        return metrics

    def resetAccumulator(self):
        self.accumErr.fill(0)
        self.accumCount = 0
        self.accumCorrect.fill(0)
        self.accumJudged.fill(0)

    def getAccumulator(self):
        """Copies of the accumulated error and counts (device arrays stay on the device), for
        setAccumulator: a skipped batch is undone with them, a checkpoint keeps a partial epoch's."""
        return {"error": self.accumErr.copy(), "count": self.accumCount, "correct": self.accumCorrect.copy(),
                "judged": self.accumJudged.copy()}

    def setAccumulator(self, saved):
        """Restore a getAccumulator() (its arrays on the host or the device; judged may be a host int, as
        checkpoints written before it moved to the device hold it)."""
        self.accumErr[...] = toDevice(saved["error"], self.accumErr.dtype)
        self.accumCorrect[...] = toDevice(saved["correct"], self.accumCorrect.dtype)
        self.accumJudged[...] = toDevice(saved["judged"], self.accumJudged.dtype)
        self.accumCount = int(saved["count"])


def widen(ary):
    """A 16-bit float array (or each of a list) as float32, the dtype costs compute in; others as they are."""
    if isinstance(ary, (list, tuple)):
        return [widen(a) for a in ary]
    return ary.astype(numpy.float32) if ary is not None and isHalf(ary.dtype) else ary


def narrow(grad, pred, scale):
    """The gradient (or each of a list) times scale (None: 1), in float32, then in its prediction's dtype."""
    if isinstance(grad, (list, tuple)):
        return [narrow(g, p, scale) for g, p in zip(grad, pred)]
    if scale is not None:
        grad *= scale
    return grad.astype(pred.dtype, copy=False)
