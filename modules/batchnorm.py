"""BatchNorm: batch normalisation of (batch, maps) inputs, the computation BatchNorm1D, 2D and 3D reuse."""
import math

from ..engine.backend import isCuda, xp
from ..engine.dtype import defaultDtype, statDtype
from ..engine.errors import PerSampleError, ShapeError
from ..engine.kernels import ElementwiseKernel, ReductionKernel
from ..engine.parallel import runParallel
from ..engine.variable import Variable
from .module import Module


class BatchNorm(Module):
    """y = (x - mean) / sqrt(var + epsilon) * scale + bias per map, on (batch, maps) inputs.

    Train mode normalises with the batch's statistics (biased variance) and updates the running
    ``mean`` and ``var`` attrs as PyTorch does: running = (1 - momentum) * running + momentum * batch,
    with the unbiased batch variance; its backward is the full gradient through the batch statistics.
    Eval mode normalises with the running statistics, so its backward is the affine one.
    affine: train ``scale`` (init 1) and ``bias`` (init 0), both of shape (maps,).

    Subclasses set ``ranks``, the input ranks they take, and ``layout``, their shape in error messages:
    statistics are taken over every axis but axis 1 (maps).

    Synchronised (``sync`` set, by a DistributedTrainer with ``syncBatchNorm=True``): train mode takes
    its statistics over the batches of every process of a data-parallel job together, with one
    all-reduce of per-map sums for the mean, one for the variance and one in the backward, so every
    process normalises, and keeps running statistics, as one process would on the union of the
    batches. ``sync`` is then an object with ``comm`` (an engine.communicator.Communicator),
    ``samples`` (this process's samples in the step, 0 for a process only keeping the collectives
    matched) and ``total`` (all processes' samples); the gradient it returns is that of this
    process's batch-mean loss, as the trainer weighs every process's gradients by its share.

    Each mode is one affine map per channel, y = x * k + shift with k = scale / std; its coefficients
    are computed on (maps,) arrays so that the full-size data is crossed as few times as possible.
    Train mode computes the output inside the centred input xc = x - mean (on the CPU: no second
    full-size array) and keeps no copy of it: the backward centres the input again, as PyTorch does,
    into the array it turns into dx = k * (g - mean(g) - xc * mean(g * xc) / std**2) in place. Keeping
    xc would hold one more activation per layer through the step, for one pass saved.

    Precision: the per-map sums, the statistics, the coefficients k and shift and the running ``mean``
    and ``var`` are in float32 for float16 data (engine-wide: engine.dtype.statDtype), so a long sum neither
    loses the 11-bit mantissa nor overflows float16's range; ``cast("float16")`` keeps the running
    statistics float32. The elementwise passes (xc, the output, the input gradient) are in the data's
    dtype, each element computed from float32 coefficients and rounded once (on CUDA) or per step (NumPy).
    On the CPU the passes run on parts of the batch on every core (Module.splitBatch) and each per-map sum
    is the sum of the parts' sums, so its last bits depend on the number of cores.
    """

    ranks = (2,)
    layout = "(batch, {maps})"

    # T: the data's dtype, S: the statistics' (statDtype(T))
    affineKernel = ElementwiseKernel(
        "T x, S k, S shift", "T y",
        "y = (T)((S)x * k + shift)",
        "macrobatch_batchnorm_affine")
    backwardKernel = ElementwiseKernel(
        "T g, T xc, S gmean, S beta, S k", "T dx",
        "dx = (T)(k * ((S)g - gmean - (S)xc * beta))",
        "macrobatch_batchnorm_backward")
    productSumKernel = ReductionKernel(
        "T a, T b", "S s", "(S)a * (S)b", "a + b", "s = a", "0",
        "macrobatch_batchnorm_productsum")

    def __init__(self, maps, epsilon=1e-5, momentum=0.1, affine=True, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.maps, self.epsilon, self.momentum, self.affine = maps, epsilon, momentum, affine
        if affine:
            self.vars["scale"] = Variable(xp.ones((maps,), dtype=defaultDtype))
            self.vars["bias"] = Variable(xp.zeros((maps,), dtype=defaultDtype))
        self.attrs["mean"] = xp.zeros((maps,), dtype=defaultDtype)
        self.attrs["var"] = xp.ones((maps,), dtype=defaultDtype)
        self.mean = self.invstd = self.k = self.gradSums = None
        self.batchStats = True
        self.sync = None
        self.dataDtype = defaultDtype

    @property
    def dtype(self):
        """The parameters' dtype; without affine parameters the one the module was cast to, which its
        inputs must have (the running statistics may be wider: see castAttrs)."""
        return super().dtype if self.affine else self.dataDtype

    def castAttrs(self, dtype):
        """Keep the running statistics in statDtype(dtype): float32 for a float16 module."""
        self.dataDtype = dtype
        super().castAttrs(statDtype(dtype))

    def checkDataShape(self, shape):
        if len(shape) not in self.ranks or shape[1] != self.maps:
            raise ShapeError(f"{self.describe()}: expected input of shape {self.layout.format(maps=self.maps)}, "
                             f"got {tuple(shape)}")
        if self.train and self.statCount(shape) < 2:
            raise ShapeError(f"{self.describe()}: train mode needs more than one value per map to take "
                             f"batch statistics, got input of shape {tuple(shape)}")

    def perMap(self, ary, shape):
        """A (maps,) array shaped to broadcast against inputs of the given shape. On the CPU it is
        repeated over one sample, (1, maps, ...): NumPy broadcasts that over the batch axis in long
        contiguous loops, about twice as fast as a stride-0 value inside every map."""
        ary = ary.reshape((1, self.maps) + (1,) * (len(shape) - 2))
        return ary if isCuda else xp.broadcast_to(ary, (1,) + shape[1:]).copy()

    def mapSum(self, a, b=None):
        """Per-map sum of a, or of a * b, shaped (maps,), accumulated and returned in statDtype, without
        a full-size temporary (on the CPU one einsum pass per part of the batch, on every core, and the
        parts' sums added: as accurate in float32 as NumPy's sum on such data)."""
        dtype = statDtype(a.dtype)
        if isCuda:
            axes = (0,) + tuple(range(2, a.ndim))
            if b is None:
                return a.sum(axis=axes, dtype=dtype)
            return self.productSumKernel(a, b, axis=axes, out=xp.empty((self.maps,), dtype=dtype))
        dims = list(range(a.ndim))
        ranges = self.batchRanges(a)
        sums = xp.empty((len(ranges), self.maps), dtype=dtype)

        def partSum(k, start, stop):
            operands = (a[start:stop], dims) if b is None else (a[start:stop], dims, b[start:stop], dims)
            xp.einsum(*operands, [1], dtype=dtype, out=sums[k])

        runParallel(partSum, [(k, start, stop) for k, (start, stop) in enumerate(ranges)])
        return sums[0] if len(ranges) == 1 else sums.sum(axis=0)

    def centre(self, data, mean):
        """data - mean per map, a new array of data's dtype (on the CPU computed on every core)."""
        out = xp.empty_like(data)
        if isCuda:
            return xp.subtract(data, self.perMap(mean, data.shape), out=out)
        mean = self.perMap(mean, data.shape)
        self.splitBatch(lambda x, part: xp.subtract(x, mean, out=part), data, out)
        return out

    def affineMap(self, x, k, shift, inPlace=False):
        """x * k + shift per map, in x's dtype; k and shift are (maps,), shift None for none. A new array,
        or on the CPU with inPlace x itself (the CUDA kernel writes a new array either way)."""
        if isCuda:
            shift = 0 if shift is None else self.perMap(shift.astype(k.dtype, copy=False), x.shape)
            return self.affineKernel(x, self.perMap(k, x.shape), shift)
        out = x if inPlace else xp.empty_like(x)
        k = self.perMap(k, x.shape)
        shift = None if shift is None else self.perMap(shift, x.shape)

        def affinePart(xpart, part):
            xp.multiply(xpart, k, out=part)
            if shift is not None:
                part += shift

        self.splitBatch(affinePart, x, out)
        return out

    def updateData(self, data):
        self.batchStats = self.train
        bias = self.vars["bias"].data if self.affine else None
        if not self.train:
            return self.affineMap(data, *self.evalAffine())
        count = self.statCount(data.shape)
        weight = 1.0 if self.sync is None or self.sync.samples else 0.0
        mean, = self.reduceSums(self.mapSum(data), weight=weight)
        mean /= count
        xc = self.centre(data, mean)
        var, = self.reduceSums(self.mapSum(xc, xc), weight=weight)
        var /= count
        self.updateRunning(mean, var, count)
        self.setCoefficients(mean, var)
        return self.affineMap(xc, self.k, bias, inPlace=True)

    def statCount(self, shape):
        """Values per map that train-mode statistics are taken over: this batch's, or synchronised,
        those of every process's batch in the step."""
        return math.prod(shape[2:]) * (shape[0] if self.sync is None else self.sync.total)

    def reduceSums(self, *sums, weight):
        """Per-map sums as a tuple; synchronised, each process's times weight summed over the processes,
        in one all-reduce."""
        if self.sync is None:
            return sums
        packed = xp.concatenate(sums)
        packed *= weight
        self.sync.comm.allreduce(packed)
        return xp.split(packed, len(sums))

    def evalAffine(self):
        """(k, shift), each (maps,): eval mode's y = x * k + shift per map, from the running statistics."""
        self.setCoefficients(self.attrs["mean"].copy(), self.attrs["var"])
        shift = -self.mean * self.k
        if self.affine:
            shift += self.vars["bias"].data
        return self.k, shift

    def setCoefficients(self, mean, var):
        """Keep the statistics this forward normalises with, 1 / std and k = scale / std, all (maps,)."""
        self.mean, self.invstd = mean, 1 / xp.sqrt(var + self.epsilon)
        self.k = self.invstd * self.vars["scale"].data if self.affine else self.invstd

    def updateRunning(self, mean, var, count):
        """Blend the batch statistics into the running ones, with the unbiased variance as PyTorch."""
        m = self.momentum
        for key, stat, factor in (("mean", mean, 1.0), ("var", var, count / (count - 1))):
            running = self.attrs[key]
            running *= 1 - m
            running += (m * factor) * stat

    def backward(self, grad, updGrad=True, updParamGrads=True):
        self.gradSums = None  # the sums of this grad, shared by updateGrad and accGradParams
        try:
            return super().backward(grad, updGrad, updParamGrads)
        finally:
            self.gradSums = None  # and the centred input with them

    def sumGrads(self, grad):
        """Per-map sums of grad and of grad * xc, and xc = inData - mean itself (a new array, which the
        train-mode updateGrad turns into the input gradient), computed once per backward. Eval mode
        needs them only for the scale and bias gradients."""
        if self.gradSums is None:
            xc = self.centre(self.inData, self.mean)
            self.gradSums = (self.mapSum(grad), self.mapSum(grad, xc), xc)
        return self.gradSums

    def updateGrad(self, grad):
        if not self.batchStats:
            return self.affineMap(grad, self.k, None)
        count = grad.size // self.maps
        gsum, gxcsum, xc = self.sumGrads(grad)
        if self.sync is not None:  # the sums of every process's gradients, each scaled to the job's loss
            gsum, gxcsum = self.reduceSums(gsum, gxcsum, weight=self.sync.samples / self.sync.total)
            if not self.sync.samples:
                return xp.zeros_like(grad)
        gmean, beta = gsum / count, gxcsum * (self.invstd * self.invstd / count)
        if isCuda:
            return self.backwardKernel(grad, xc, self.perMap(gmean, grad.shape), self.perMap(beta, grad.shape),
                                       self.perMap(self.k, grad.shape))
        beta, gmean, k = (self.perMap(c, grad.shape) for c in (-beta, gmean, self.k))

        def gradPart(g, dx):  # dx holds xc on entry: accGradParams needs only the sums
            dx *= beta
            dx += g
            dx -= gmean
            dx *= k

        self.splitBatch(gradPart, grad, xc)
        return xc

    def accGradParams(self, grad):
        gsum, gxcsum, _ = self.sumGrads(grad)
        self.vars["scale"].accumulate(gxcsum * self.invstd)
        self.vars["bias"].accumulate(gsum)

    def checkPerSample(self):
        """Train mode normalises each sample with the whole batch's statistics, so a sample's gradient depends
        on the others and per-sample gradients are undefined: refuse it. Eval mode is a per-map affine map."""
        if self.train:
            raise PerSampleError(f"{self.describe()} in train mode normalises with the statistics of the whole "
                                 "batch, so per-sample gradients are undefined; use GroupNorm (per-sample "
                                 "statistics) or put the module in eval mode (running statistics)")
        super().checkPerSample()

    def perSampleGrads(self, grad):
        """Each sample's scale and bias gradients (batch, maps), in eval mode: mapSum's sums taken per sample."""
        batch, dtype = grad.shape[0], statDtype(grad.dtype)
        g = grad.reshape(batch, self.maps, -1)
        xc = self.centre(self.inData, self.mean).reshape(g.shape)
        scale = xp.einsum("nmp,nmp->nm", g, xc, dtype=dtype) * self.invstd
        bias = g.sum(axis=2, dtype=dtype)
        return {"scale": scale.astype(grad.dtype, copy=False), "bias": bias.astype(grad.dtype, copy=False)}
