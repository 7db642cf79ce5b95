"""CrossEntropy: softmax cross-entropy of logits against integer class labels, with accuracy."""
import numpy

from ..engine.backend import isCuda, isDeviceArray, toDevice, toHost, xp
from ..engine.errors import DtypeError, LabelError, ShapeError
from ..engine.kernels import ElementwiseKernel, ReductionKernel
from .cost import Cost
from .labelrange import LabelRange


class CrossEntropy(Cost):
    """pred: logits (batch, classes), or (batch, time, classes) for sequences; target: class labels
    (batch,) or (batch, time), int32 after prepareTarget. A sequence is scored as batch * time rows,
    as torch's cross_entropy on the (batch, classes, time) permutation of pred.

    classAxis: where pred holds the classes: -1 (default, the layouts above) or 1, torch's layout:
    pred (batch, classes, d1, d2, ...) with labels (batch, d1, d2, ...), one row per position (a
    segmentation map, say). The two differ only for pred of 3 dims or more, so it is an argument:
    the label shape alone cannot tell (batch, time, classes) from (batch, classes, d1) when they agree.

    error = the mean over rows of -log softmax(pred)[label], computed with the row maximum
    subtracted so that huge logits neither overflow nor lose the answer;
    grad = (softmax(pred) - onehot(label)) / rows, without ever building the one-hot array.

    weights: one weight per class (finite, >= 0) or None; ignoreIndex: a label (torch's -100, say)
    whose rows count for nothing, or None. With either, as torch's cross_entropy(weight=,
    ignore_index=), row n counts with w[label_n] (0 when ignored) and the mean divides by the sum
    of those weights; the gradient rows scale alike.

    labelSmoothing: eps in [0, 1], torch's label_smoothing: the target is (1 - eps) onehot(label) +
    eps / classes everywhere. With weights and ignoreIndex combined as torch does: row n adds
    (1 - eps) w[label_n] (-log p[label_n]) + eps / classes * sum_c w[c] (-log p[c]) unless ignored, and the
    sum divides by the sum of w[label_n] over the rows not ignored.

    A batch whose rows weigh nothing in total (all labels ignored, say) has error 0 and gradient 0: it
    contributes nothing and training goes on. torch's gradient is 0 there too, but its loss is NaN
    (0 / 0), which would stop a Trainer that refuses NaN losses. The accumulated error weighs each
    batch's error by its judged (non-ignored) rows, so getError is the mean over every judged row since
    the last reset (over samples times steps for sequences, positions for classAxis=1), and an
    all-ignored batch leaves it unchanged.

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

    samplewise = True

    sumExpKernel = ReductionKernel("T x, T rowMax", "T sumExp", "exp(x - rowMax)", "a + b", "sumExp = a", "0",
                                   "macrobatch_ce_sumexp")
    # sum over the classes of w[c] (x[c] - rowMax): the label-smoothing term without -log p's row constant
    smoothSumKernel = ReductionKernel("T x, T rowMax, T w", "T smoothSum", "(x - rowMax) * w", "a + b",
                                      "smoothSum = a", "0", "macrobatch_ce_smoothsum")
    # row n: p * probScale - rowScale at the label - smoothScale * w[class] (see rowGrad)
    gradKernel = ElementwiseKernel(
        "T x, T rowMax, T sumExp, L label, int32 classes, T rowScale, T probScale, T smoothScale, T w", "T grad",
        "grad = exp(x - rowMax) / sumExp * probScale - (i % classes == label ? rowScale : (T)0) - smoothScale * w",
        "macrobatch_ce_grad")

    def __init__(self, weights=None, ignoreIndex=None, labelSmoothing=0.0, classAxis=-1):
        super().__init__()
        self.weights = None if weights is None else self.checkWeights(weights)
        if ignoreIndex is not None and not isinstance(ignoreIndex, (int, numpy.integer)):
            raise DtypeError(f"{type(self).__name__}: ignoreIndex must be an integer or None, got {ignoreIndex!r}")
        if not (isinstance(labelSmoothing, (int, float, numpy.floating)) and 0 <= labelSmoothing <= 1):
            raise ValueError(f"{type(self).__name__}: labelSmoothing must be a number in [0, 1], got {labelSmoothing!r}")
        if classAxis not in (1, -1) or isinstance(classAxis, bool):
            raise ValueError(f"{type(self).__name__}: classAxis must be -1 (classes last) or 1 (torch's "
                             f"(batch, classes, d1, ...)), got {classAxis!r}")
        self.labelSmoothing, self.classAxis = float(labelSmoothing), classAxis
        self.ignoreIndex = None if ignoreIndex is None else int(ignoreIndex)
        self.weighted = weights is not None or ignoreIndex is not None
        self.deviceWeights = {}
        self.maxLabel = None
        self.labelRange = LabelRange(type(self).__name__)
        self.rowMax = self.sumExp = self.exps = self.flatLabels = self.labels = self.rowScale = None
        self.smoothScale = self.judged = self.rowWeightTotal = None

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

    def labelShape(self, shape):
        """The label shape that goes with predictions of this shape: shape without its class axis."""
        return shape[:-1] if self.classAxis == -1 else shape[:1] + shape[2:]

    def checkShapes(self, pred, target):
        if self.classAxis == -1 and pred.ndim not in (2, 3):
            raise ShapeError(f"{type(self).__name__}: expected predictions of shape (batch, classes) or "
                             f"(batch, time, classes), got {tuple(pred.shape)}")
        if pred.ndim < 2:
            raise ShapeError(f"{type(self).__name__}: expected predictions of shape (batch, classes, d1, ...), "
                             f"got {tuple(pred.shape)}")
        if target.shape != self.labelShape(pred.shape):
            raise ShapeError(f"{type(self).__name__}: expected labels of shape {tuple(self.labelShape(pred.shape))}, "
                             f"got {tuple(target.shape)}")
        if self.weights is not None and self.weights.size != pred.shape[self.classAxis]:
            raise ShapeError(f"{type(self).__name__}: {self.weights.size} class weights for "
                             f"{pred.shape[self.classAxis]} classes")

    def ignored(self, target):
        """Boolean array of the labels equal to ignoreIndex, or None without one."""
        return None if self.ignoreIndex is None else target == self.ignoreIndex

    def prepareTarget(self, target):
        """Labels as int32, on the host or the device as given; they may arrive as integer-valued floats.
        Fractional, non-finite or negative labels (other than ignoreIndex) raise LabelError naming the
        first one and its index."""
        mod = xp if isDeviceArray(target) else numpy
        target = mod.asarray(target)
        if target.ndim not in (1, 2) if self.classAxis == -1 else target.ndim < 1:
            layouts = "(samples,) or (samples, time)" if self.classAxis == -1 else "(samples, d1, ...)"
            raise ShapeError(f"{type(self).__name__}: expected labels of shape {layouts}, got {tuple(target.shape)}")
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
        """pred as (rows, classes) and target as (rows,): sequences flattened (views of the batch); with
        classAxis=1 the classes moved last first (a copy beyond 2 dims)."""
        if self.classAxis == 1 and pred.ndim > 2:
            pred = xp.moveaxis(pred, 1, -1)
        return pred.reshape(-1, pred.shape[-1]), target.reshape(-1)

    def fromRows(self, grad, pred):
        """A (rows, classes) gradient in pred's layout: rows undone."""
        if self.classAxis == 1 and pred.ndim > 2:
            return xp.ascontiguousarray(xp.moveaxis(grad.reshape(self.labelShape(pred.shape) + pred.shape[1:2]), -1, 1))
        return grad.reshape(pred.shape)

    def classWeights(self, dtype):
        """The class weights as a device array of dtype (cached), or None without weights."""
        if self.weights is None:
            return None
        return self.deviceWeights.setdefault(dtype, toDevice(self.weights, dtype))

    def weightTotal(self, classes):
        """The sum of the class weights (a host float; classes without weights)."""
        return classes if self.weights is None else float(self.weights.sum())

    def calcError(self, pred, target):
        scores, labels = self.rows(pred, target)
        ignored = self.ignored(labels)
        self.labels = self.checkLabels(labels, ignored, scores.shape[1])
        self.judged = labels.size if ignored is None else (~ignored).sum()
        self.rowScale, self.smoothScale = self.rowScales(scores, self.labels, ignored)
        error = self.scaledSum(self.rowLosses(scores, self.labels), self.rowScale)
        if self.labelSmoothing:
            error = error + self.scaledSum(self.smoothLosses(scores), self.smoothScale)
        return xp.asarray(error)

    @staticmethod
    def scaledSum(values, scale):
        """sum_n values[n] * scale[n], scale a vector or one host float for every row."""
        return values @ scale if isinstance(scale, xp.ndarray) else values.sum() * scale

    def rowScales(self, scores, labels, ignored):
        """(rowScale, smoothScale): what each row's -log p[label] and its label-smoothing term count for.
        Host floats (1 - eps) / rows and eps / (classes rows) without weights or ignoreIndex, else device
        vectors: (1 - eps) w[label] and eps / classes (0 for ignored rows), over the sum of w[label] (0
        when that sum is 0: the batch counts for nothing); labels: safe to index with."""
        rows, classes = scores.shape
        eps = self.labelSmoothing
        if not self.weighted:
            return (1 - eps) / rows, eps / (classes * rows)
        kept = xp.ones(rows, dtype=scores.dtype) if ignored is None else (~ignored).astype(scores.dtype)
        rowWeight = kept if self.weights is None else self.classWeights(scores.dtype)[labels] * kept
        total = self.rowWeightTotal = rowWeight.sum()
        inverse = (total > 0) / xp.where(total > 0, total, 1)  # 1 / total, or 0 for a batch weighing nothing
        return rowWeight * (inverse * (1 - eps)), kept * (inverse * (eps / classes))

    def independentTerms(self, grad):
        """With weights or ignoreIndex, grad (the batch's terms: weighted rows over the batch's mean row weight)
        times weight sum / rows: each sample's weighted rows over its own number of rows, whatever the other
        samples' labels (sampleGrad's independent)."""
        if self.weighted:
            rows = self.rowScale.shape[0]
            grad *= (self.rowWeightTotal / rows).astype(grad.dtype)
        return grad

    def getError(self):
        """Mean error over the judged rows since the last reset (see the class docstring; a host float,
        synchronises). Raises first what checkTargets raises."""
        self.checkTargets()
        error, judged = toHost(xp.stack([self.accumErr, self.accumJudged.astype(xp.float64)]))
        return float(error) / float(judged) if judged else float("nan")

    def errorWeight(self, pred, target):
        """The batch's judged rows (a host int, or a device count with ignoreIndex)."""
        return self.judged

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

    def smoothLosses(self, scores):
        """sum_c w[c] (-log p[c]) of every row (w = 1 without weights), after rowLosses:
        W log(sumExp) - sum_c w[c] (x[c] - rowMax), W the sum of w, both terms >= 0 so nothing cancels."""
        weights, total = self.classWeights(scores.dtype), self.weightTotal(scores.shape[1])
        if isCuda:
            shifted = self.smoothSumKernel(scores, self.rowMax, scores.dtype.type(1) if weights is None else weights,
                                           axis=1)
        else:
            shifted = xp.subtract(scores, self.rowMax)
            shifted = shifted.sum(axis=1) if weights is None else shifted @ weights
        return total * xp.log(self.sumExp[:, 0]) - shifted

    def calcGrad(self, pred, target):
        """The gradient for the batch calcError just scored (with the labels it checked)."""
        scores, _ = self.rows(pred, target)
        scale = self.rowScale[:, None] if self.weighted else self.rowScale
        return self.fromRows(self.rowGrad(scores, self.labels, scale), pred)

    def rowGrad(self, scores, labels, scale):
        """The gradient of the rows' losses, row n scaled by scale (a float or an (n, 1) array):
        p * (scale + smooth W) - scale at the label - smooth w[class], smooth the row's smoothScale
        (eps / classes over the weight sum) and W the sum of the class weights w (w = 1 without)."""
        rows, classes = scores.shape
        smooth, weights = self.smoothScale, self.classWeights(scores.dtype)
        if not self.labelSmoothing:
            smooth, weights, probScale = 0.0, 0.0, scale
        else:
            smooth = smooth[:, None] if self.weighted else smooth
            probScale = scale + smooth * self.weightTotal(classes)
            weights = 1.0 if weights is None else weights
        if isCuda:
            # an ignored row's label never matters: its scale is 0
            cast = scores.dtype.type
            return self.gradKernel(scores, self.rowMax, self.sumExp, labels[:, None], classes,
                                   *(v if isinstance(v, xp.ndarray) else cast(v)
                                     for v in (scale, probScale, smooth, weights)))
        grad, self.exps = self.exps, None
        xp.divide(probScale, self.sumExp, out=self.sumExp)
        grad *= self.sumExp
        grad.reshape(-1)[self.flatLabels] -= scale if not self.weighted else scale[:, 0]
        if self.labelSmoothing:
            grad -= smooth * weights
        return grad

    def countCorrect(self, pred, target):
        """Right predictions and judged rows: device counts (judged a host int without ignoreIndex)."""
        right = pred.argmax(axis=self.classAxis) == target
        ignored = self.ignored(target)
        if ignored is None:
            return right.sum(), target.size
        judged = ~ignored
        right &= judged
        return right.sum(), judged.sum()
