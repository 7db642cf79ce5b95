"""CrossEntropy: softmax cross-entropy of logits against integer class labels, with accuracy."""
import numpy

from ..engine.backend import isCuda, isDeviceArray, toDevice, xp
from ..engine.errors import DtypeError, LabelError, ShapeError
from ..engine.kernels import ElementwiseKernel, ReductionKernel
from .cost import Cost
from .labelrange import LabelRange


class CrossEntropy(Cost):
    """pred: logits (batch, classes), or (batch, time, classes) for sequences; target: class labels
    (batch,) or (batch, time), int32 after prepareTarget. A sequence is scored as batch * time rows,
    as torch's cross_entropy on the (batch, classes, time) permutation of pred.

    error = the mean over rows of -log softmax(pred)[label], computed with the row maximum
    subtracted so that huge logits neither overflow nor lose the answer;
    grad = (softmax(pred) - onehot(label)) / rows, without ever building the one-hot array.

    weights: one weight per class (finite, >= 0) or None; ignoreIndex: a label (torch's -100, say)
    whose rows count for nothing, or None. With either, as torch's cross_entropy(weight=,
    ignore_index=), row n counts with w[label_n] (0 when ignored) and the mean divides by the sum
    of those weights (a batch whose rows are all ignored has error NaN, as in torch); the gradient
    rows scale alike. Error accumulation still weighs batches by their sample counts.

    getMetrics also reports accuracy: the fraction of non-ignored rows whose argmax is the label
    (both counts kept on the device). No batch waits for the device: ignored rows are masked with
    where and multiplications, never boolean indexing.

    Label range: prepareTarget rejects bad labels at once and records the largest label it has seen
    since the last resetAccumulator (a host int; handlers prepare the next macrobatch while the
    current one trains, so it is a running maximum), and calcError compares it with the number of
    classes on the host. Labels given straight to the cost (``cost(net(x), labels)`` in a loop of
    one's own) are checked as they come on the CPU backend. On the GPU that would read every batch
    back to the host, so there a LabelRange screens them on the device: they are clipped into range
    (nothing is read out of bounds) and a bad one raises LabelError, naming it, at the next
    ``checkTargets``, ``getError`` or ``getMetrics``, and at every one after until resetAccumulator.
    """

    sumExpKernel = ReductionKernel("T x, T rowMax", "T sumExp", "exp(x - rowMax)", "a + b", "sumExp = a", "0",
                                   "macrobatch_ce_sumexp")
    gradKernel = ElementwiseKernel(
        "T x, T rowMax, T sumExp, L label, int32 classes, T rowScale", "T grad",
        "grad = (exp(x - rowMax) / sumExp - (i % classes == label ? 1 : 0)) * rowScale",
        "macrobatch_ce_grad")

    def __init__(self, weights=None, ignoreIndex=None):
        super().__init__()
        self.weights = None if weights is None else self.checkWeights(weights)
        if ignoreIndex is not None and not isinstance(ignoreIndex, (int, numpy.integer)):
            raise DtypeError(f"{type(self).__name__}: ignoreIndex must be an integer or None, got {ignoreIndex!r}")
        self.ignoreIndex = None if ignoreIndex is None else int(ignoreIndex)
        self.weighted = weights is not None or ignoreIndex is not None
        self.deviceWeights = {}
        self.maxLabel = None
        self.labelRange = LabelRange(type(self).__name__)
        self.rowMax = self.sumExp = self.exps = self.flatLabels = self.labels = self.rowScale = None

    def checkWeights(self, weights):
        weights = numpy.array(weights, dtype=numpy.float64)
        if weights.ndim != 1 or weights.size == 0:
            raise ShapeError(f"{type(self).__name__}: expected class weights of shape (classes,), "
                             f"got {weights.shape}")
        bad = ~(numpy.isfinite(weights) & (weights >= 0))
        if bad.any():
            index = int(bad.nonzero()[0][0])
            raise ValueError(f"{type(self).__name__}: class weight {weights[index]} at index {index} "
                             "is not a finite number >= 0")
        return weights

    def resetAccumulator(self):
        super().resetAccumulator()
        self.maxLabel = None
        self.labelRange.reset()

    def checkTargets(self):
        self.labelRange.check()

    def checkShapes(self, pred, target):
        if pred.ndim not in (2, 3):
            raise ShapeError(f"{type(self).__name__}: expected predictions of shape (batch, classes) or "
                             f"(batch, time, classes), got {tuple(pred.shape)}")
        if target.shape != pred.shape[:-1]:
            raise ShapeError(f"{type(self).__name__}: expected labels of shape {tuple(pred.shape[:-1])}, "
                             f"got {tuple(target.shape)}")
        if self.weights is not None and self.weights.size != pred.shape[-1]:
            raise ShapeError(f"{type(self).__name__}: {self.weights.size} class weights for "
                             f"{pred.shape[-1]} classes")

    def ignored(self, target):
        """Boolean array of the labels equal to ignoreIndex, or None without one."""
        return None if self.ignoreIndex is None else target == self.ignoreIndex

    def prepareTarget(self, target):
        """Labels as int32, on the host or the device as given; they may arrive as integer-valued floats.
        Fractional, non-finite or negative labels (other than ignoreIndex) raise LabelError naming the
        first one and its index."""
        mod = xp if isDeviceArray(target) else numpy
        target = mod.asarray(target)
        if target.ndim not in (1, 2):
            raise ShapeError(f"{type(self).__name__}: expected labels of shape (samples,) or (samples, time), "
                             f"got {tuple(target.shape)}")
        if target.dtype.kind == "f":
            self.rejectTargets(target, ~mod.isfinite(target) | (target != mod.floor(target)),
                               "label {value} at index {index} is not an integer")
        elif target.dtype.kind not in "biu":
            raise DtypeError(f"{type(self).__name__}: labels must be integers or integer-valued floats, "
                             f"got {target.dtype}")
        # taken before the int32 cast, so a label too large for int32 is still reported as it is
        top = self.largestLabel(target, self.kept(target, self.ignored(target), mod))
        self.maxLabel = top if self.maxLabel is None else max(self.maxLabel, top)
        return mod.ascontiguousarray(target, dtype=numpy.int32)

    @staticmethod
    def kept(target, ignored, mod=xp):
        """target with the ignored labels set to 0: a label that indexes safely and is never out of range."""
        return target if ignored is None else mod.where(ignored, 0, target)

    def largestLabel(self, target, kept):
        """Reject a negative label (LabelError naming the first) and return the largest (a host int; 0
        when all are ignored). Reads kept on the host: once per block in prepareTarget, per batch on the CPU."""
        self.rejectTargets(target, kept < 0, "label {value} at index {index} is negative")
        return int(kept.max()) if kept.size else 0

    def checkLabels(self, labels, ignored, classes):
        """The batch's labels (rows,) checked against classes, returned safe to index with: ignored ones
        set to 0 and, on the GPU, all clipped into range (see the class docstring)."""
        if labels.dtype.kind not in "iu":
            raise DtypeError(f"{type(self).__name__}: labels must be integers, got {labels.dtype}; "
                             "convert them with prepareTarget")
        top = -1 if self.maxLabel is None else self.maxLabel
        kept = self.kept(labels, ignored)
        if isCuda:
            kept = self.labelRange.screen(kept, classes)
        else:
            top = max(top, self.largestLabel(labels, kept))
        if top >= classes:
            raise LabelError(f"{type(self).__name__}: label {top} is out of range for {classes} classes")
        return kept

    def rows(self, pred, target):
        """pred as (rows, classes) and target as (rows,): sequences flattened, views of the batch."""
        return pred.reshape(-1, pred.shape[-1]), target.reshape(-1)

    def calcError(self, pred, target):
        scores, labels = self.rows(pred, target)
        ignored = self.ignored(labels)
        self.labels = self.checkLabels(labels, ignored, scores.shape[1])
        self.rowScale = self.rowScales(scores, self.labels, ignored)
        losses = self.rowLosses(scores, self.labels)
        return xp.asarray(losses @ self.rowScale if self.weighted else losses.mean())

    def rowScales(self, scores, labels, ignored):
        """A host float 1 / rows without weights or ignoreIndex, else a device vector of w[label] / sum of
        them (0 for ignored rows); labels: safe to index with."""
        if not self.weighted:
            return 1.0 / labels.size
        if self.weights is None:
            rowWeight = xp.ones(labels.size, dtype=scores.dtype)
        else:
            weights = self.deviceWeights.setdefault(scores.dtype, toDevice(self.weights, scores.dtype))
            rowWeight = weights[labels]
        if ignored is not None:
            rowWeight = xp.where(ignored, 0, rowWeight)
        # an all-ignored batch divides 0 by 0: NaN, as torch gives
        with numpy.errstate(invalid="ignore"):
            return rowWeight / rowWeight.sum()

    def rowLosses(self, scores, labels):
        """-log softmax(scores)[label] of every row; keeps what calcGrad needs."""
        rows, classes = scores.shape
        self.rowMax = scores.max(axis=1, keepdims=True)
        if isCuda:
            self.sumExp = self.sumExpKernel(scores, self.rowMax, axis=1, keepdims=True)
        else:
            # the exponentials are computed into the buffer that calcGrad turns into the gradient
            self.exps = xp.subtract(scores, self.rowMax)
            xp.exp(self.exps, out=self.exps)
            self.sumExp = self.exps.sum(axis=1, keepdims=True)
        self.flatLabels = xp.arange(rows) * classes + labels
        picked = scores.reshape(-1)[self.flatLabels]
        return xp.log(self.sumExp[:, 0]) - (picked - self.rowMax[:, 0])

    def calcGrad(self, pred, target):
        """The gradient for the batch calcError just scored (with the labels it checked)."""
        scores, _ = self.rows(pred, target)
        scale = self.rowScale[:, None] if self.weighted else self.rowScale
        return self.rowGrad(scores, self.labels, scale).reshape(pred.shape)

    def rowGrad(self, scores, labels, scale):
        """The gradient of the rows' losses, row n scaled by scale (a float or an (n, 1) array)."""
        rows, classes = scores.shape
        if isCuda:
            # an ignored row's label never matters: its scale is 0
            return self.gradKernel(scores, self.rowMax, self.sumExp, labels[:, None], classes,
                                   scale if self.weighted else scores.dtype.type(scale))
        grad, self.exps = self.exps, None
        xp.divide(scale, self.sumExp, out=self.sumExp)
        grad *= self.sumExp
        grad.reshape(-1)[self.flatLabels] -= scale if not self.weighted else scale[:, 0]
        return grad

    def countCorrect(self, pred, target):
        """Right predictions and judged rows: device counts (judged a host int without ignoreIndex)."""
        right = pred.argmax(axis=-1) == target
        ignored = self.ignored(target)
        if ignored is None:
            return right.sum(), target.size
        judged = ~ignored
        right &= judged
        return right.sum(), judged.sum()
