"""CrossEntropy: softmax cross-entropy of logits against integer class labels, with accuracy."""
import numpy

from ..engine.backend import isCuda, isDeviceArray, xp
from ..engine.errors import DtypeError, LabelError, ShapeError
from ..engine.kernels import ElementwiseKernel, ReductionKernel
from .cost import Cost


class CrossEntropy(Cost):
    """pred: logits (batch, classes); target: class labels (batch,), int32 after prepareTarget.

    error = mean over the batch of -log softmax(pred)[label], computed with the row maximum
    subtracted so that huge logits neither overflow nor lose the answer;
    grad = (softmax(pred) - onehot(label)) / batch, without ever building the one-hot array.
    getMetrics also reports accuracy: the fraction of samples whose argmax is the label.

    Label range: prepareTarget records the largest label it has seen since the last
    resetAccumulator (a host int; handlers prepare the next macrobatch while the current one
    trains, so it is a running maximum), and calcError compares it with the number of classes on
    the host, so training never waits on the device for it. Labels given straight to the cost are
    checked as they come on the CPU backend; on CuPy only while nothing has been prepared since the
    last reset, since that check reads the batch back to the host.
    """

    sumExpKernel = ReductionKernel("T x, T rowMax", "T sumExp", "exp(x - rowMax)", "a + b", "sumExp = a", "0",
                                   "macrobatch_ce_sumexp")
    gradKernel = ElementwiseKernel(
        "T x, T rowMax, T sumExp, L label, int32 classes, T invBatch", "T grad",
        "grad = (exp(x - rowMax) / sumExp - (i % classes == label ? 1 : 0)) * invBatch",
        "macrobatch_ce_grad")

    def __init__(self):
        super().__init__()
        self.maxLabel = None
        self.rowMax = self.sumExp = self.exps = self.flatLabels = None

    def resetAccumulator(self):
        super().resetAccumulator()
        self.maxLabel = None

    def checkShapes(self, pred, target):
        if pred.ndim != 2:
            raise ShapeError(f"CrossEntropy: expected predictions of shape (batch, classes), got {tuple(pred.shape)}")
        if target.shape != pred.shape[:1]:
            raise ShapeError(f"CrossEntropy: expected labels of shape ({pred.shape[0]},), got {tuple(target.shape)}")

    def prepareTarget(self, target):
        """Labels as int32, on the host or the device as given; they may arrive as integer-valued floats.
        Fractional, non-finite or negative labels raise LabelError naming the first one and its index."""
        mod = xp if isDeviceArray(target) else numpy
        target = mod.asarray(target)
        if target.ndim != 1:
            raise ShapeError(f"CrossEntropy: expected labels of shape (samples,), got {tuple(target.shape)}")
        if target.dtype.kind == "f":
            self.rejectTargets(target, ~mod.isfinite(target) | (target != mod.floor(target)),
                               "label {value} at index {index} is not an integer")
        elif target.dtype.kind not in "biu":
            raise DtypeError(f"CrossEntropy: labels must be integers or integer-valued floats, got {target.dtype}")
        self.rejectTargets(target, target < 0, "label {value} at index {index} is negative")
        if target.size:
            # taken before the int32 cast, so a label too large for int32 is still reported as it is
            top = int(target.max())
            self.maxLabel = top if self.maxLabel is None else max(self.maxLabel, top)
        return mod.ascontiguousarray(target, dtype=numpy.int32)

    def checkLabels(self, target, classes):
        if target.dtype.kind not in "iu":
            raise DtypeError(f"CrossEntropy: labels must be integers, got {target.dtype}; "
                             "convert them with prepareTarget")
        top = -1 if self.maxLabel is None else self.maxLabel
        if self.maxLabel is None or not isCuda:
            self.rejectTargets(target, target < 0, "label {value} at index {index} is negative")
            top = max(top, int(target.max()))
        if top >= classes:
            raise LabelError(f"CrossEntropy: label {top} is out of range for {classes} classes")

    def calcError(self, pred, target):
        batch, classes = pred.shape
        self.checkLabels(target, classes)
        self.rowMax = pred.max(axis=1, keepdims=True)
        if isCuda:
            self.sumExp = self.sumExpKernel(pred, self.rowMax, axis=1, keepdims=True)
        else:
            # the exponentials are computed into the buffer that calcGrad turns into the gradient
            self.exps = xp.subtract(pred, self.rowMax)
            xp.exp(self.exps, out=self.exps)
            self.sumExp = self.exps.sum(axis=1, keepdims=True)
        self.flatLabels = xp.arange(batch) * classes + target
        picked = pred.reshape(-1)[self.flatLabels]
        return xp.asarray((xp.log(self.sumExp[:, 0]) - (picked - self.rowMax[:, 0])).mean())

    def calcGrad(self, pred, target):
        batch, classes = pred.shape
        if isCuda:
            return self.gradKernel(pred, self.rowMax, self.sumExp, target[:, None], classes,
                                   pred.dtype.type(1.0 / batch))
        grad, self.exps = self.exps, None
        self.sumExp *= batch
        grad /= self.sumExp
        grad.reshape(-1)[self.flatLabels] -= 1.0 / batch
        return grad

    def countCorrect(self, pred, target):
        return (pred.argmax(axis=1) == target).sum(), pred.shape[0]
