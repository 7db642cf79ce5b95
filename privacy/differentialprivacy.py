"""DifferentialPrivacy: DP-SGD (Abadi et al. 2016) as a wrapper that stands where the optimizer stands."""
from ..engine.backend import xp
from ..engine.checks import checkHyper, checkPositiveInt
from ..engine.persample import rowNormsSquared
from ..engine.random import addNormal
from ..modules.multimodule import flatArrays
from ..modules.persample import checkPerSample, sampleGradients, sampleGradNorms
from ..optimizers.gradientaccumulation import GradientAccumulation
from ..optimizers.wrapper import OptimizerWrapper


class DifferentialPrivacy(OptimizerWrapper):
    """Every step: each sample's gradient clipped to clipNorm, the clipped gradients summed, Gaussian noise of
    standard deviation noiseMultiplier * clipNorm added once, the sum divided by the expected batch size, then
    the wrapped optimizer's update (its hooks run on the private gradient).

    How it meets the Trainer: a Trainer finds the wrapper (``privacyOf``) and, per batch, asks it for the
    output gradient instead of calling the cost: ``clippedOutputGrad`` takes every sample's own loss gradient
    (Cost.sampleGrad), their per-sample gradient norms (``ghost``: ghost norms, sampleGradNorms, without
    forming per-sample gradients; else the norms of the materialised per-sample gradients, a cross-check of
    the ghost norms), and scales sample i's output gradient by min(1, clipNorm / norm_i). The Trainer's
    ordinary zeroGradParams and backward then accumulate exactly the sum of the clipped per-sample
    gradients, as Opacus's ghost clipping's second backward. Its ``update`` (``prepareGrads``) adds the
    noise, divides and steps. Nothing is read back to the host: the noise is drawn on the device from the
    engine's random source (setSeed reproduces it).

    expectedBatchSize: the divisor; None takes the one the Trainer gives, its batchsize under Poisson sampling
    (the expected size, as the accounting needs: dividing by the drawn size would reveal it), else each
    batch's own size.

    With gradient accumulation wrap it inside: ``GradientAccumulation(DifferentialPrivacy(opt, C, s), k)``:
    the clipped sums of the k batches add up, the noise is added once per logical step, and the group's mean
    of k divided sums is the sum over the logical batch divided by k times the expected batch size.
    Mixed precision and BatchNorm in train mode (samples mixed: per-sample gradients undefined) are refused.

    In a data-parallel job (DistributedTrainer) the noise is added once per step in the whole job, by rank 0
    alone (``expectBatch``'s noisy), and the divisor is the step's expected batch size over all processes, so
    that expectedBatchSize, when given, is the global one.
    """

    def __init__(self, optimizer, clipNorm, noiseMultiplier, expectedBatchSize=None, ghost=True):
        if isinstance(optimizer, GradientAccumulation):
            raise ValueError("DifferentialPrivacy: wrap it inside GradientAccumulation, "
                             "GradientAccumulation(DifferentialPrivacy(optimizer, ...), batches), so that the noise "
                             "is added once per accumulated step")
        self.clipNorm = self.checkHyper("clipNorm", clipNorm, lowOpen=True)
        self.noiseMultiplier = self.checkHyper("noiseMultiplier", noiseMultiplier)
        self.expectedBatchSize = None if expectedBatchSize is None else checkPositiveInt(
            expectedBatchSize, "DifferentialPrivacy: expectedBatchSize")
        if optimizer.precision != "float32":
            raise ValueError(f"DifferentialPrivacy: the optimizer is set up in precision={optimizer.precision!r}; "
                             "mixed precision is not supported, set it up in float32")
        super().__init__(optimizer)
        self.ghost = bool(ghost)
        self.divisor = None  # expectBatch's
        self.noisy = True  # expectBatch's

    checkHyper = checkHyper

    def setupOn(self, module, useGlobalState=True, precision="float32", lossScaler=None):
        """Set the wrapped optimizer up on module (float32 only: 16-bit gradients would need the per-sample
        output gradients scaled and unscaled around the clipping)."""
        if precision != "float32":
            raise ValueError(f"DifferentialPrivacy: precision={precision!r} is not supported; train in float32")
        return super().setupOn(module, useGlobalState, precision, lossScaler)

    def check(self, net, cost):
        """PerSampleError, naming the module or cost, before any work, unless net (in its current mode) and
        cost allow per-sample gradients; a Trainer asks it as each call begins."""
        checkPerSample(net, cost)

    def expectBatch(self, batchSize, noisy=True):
        """The divisor of the coming step when expectedBatchSize is None (the Trainer's, per batch: see the
        class docstring), and whether this process adds the coming step's noise (False in every process of a
        data-parallel job but one; it holds for that step only, so the noise is never left out by mistake)."""
        self.divisor, self.noisy = batchSize, bool(noisy)

    def clippedOutputGrad(self, net, cost, pred, target):
        """(error, grad) of a training batch whose forward gave pred: the error accumulated by cost as in
        training, and the per-sample output gradient with row i scaled by min(1, clipNorm / norm_i), so that
        backward gives the sum of the clipped per-sample gradients. The terms are the cost's independent ones
        (Cost.sampleGrad): no sample's clipped gradient depends on another's labels, as the sensitivity needs."""
        self.check(net, cost)
        error, grad = cost.sampleGrad(pred, target, independent=True)
        if self.ghost:
            norms = sampleGradNorms(net, grad)
        else:
            norms = xp.sqrt(sum(rowNormsSquared(rows) for rows in sampleGradients(net, grad).values()))
        factors = self.clipNorm / xp.maximum(norms, self.clipNorm)
        scaled = [ary * factors.reshape((-1,) + (1,) * (ary.ndim - 1)).astype(ary.dtype) for ary in flatArrays(grad)]
        return error, scaled if isinstance(grad, (list, tuple)) else scaled[0]

    def prepareGrads(self):
        """The wrapped optimizer's prepareGrads, then the noise added to every parameter gradient (unless
        expectBatch said another process adds it) and the sum divided by the expected batch size (an empty
        Poisson batch too: noise alone)."""
        finite = self.optimizer.prepareGrads()
        scale = 1.0 / (self.expectedBatchSize or self.divisor or 1)
        std = self.noiseMultiplier * self.clipNorm if self.noisy else 0.0
        self.noisy = True
        for _, _, _, grad in self.optimizer.bindings:
            if std:
                addNormal(grad, std)
            grad *= scale
        return finite


def privacyOf(optimizer):
    """The DifferentialPrivacy that optimizer is or wraps (through wrappers' ``optimizer``), or None."""
    while optimizer is not None and not isinstance(optimizer, DifferentialPrivacy):
        optimizer = getattr(optimizer, "optimizer", None)
    return optimizer
