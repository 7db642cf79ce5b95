"""LARS: momentum SGD with a per-layer learning rate from the ratio of weight and gradient norms
(You, Gitman & Ginsburg, 2017, "Large Batch Training of Convolutional Networks", Algorithm 1)."""
import numpy

from ..engine.backend import isCuda, toDevice, xp
from ..engine.kernels import ElementwiseKernel, ReductionKernel
from .optimizer import Optimizer

lanes = 512  # strided partial sums per chunk, the reduced axis (CuPy's reduction block size)
chunk = 1 << 15  # elements per chunk: a single large layer still gives every multiprocessor work


class LARS(Optimizer):
    """For every parameter array w (a layer's weight or bias) with gradient g, each step:

        local = trustCoef ||w|| / (||g|| + weightDecay ||w||)   (1 where ||w|| or ||g|| is 0)
        v = momRate v + learnRate local (g + weightDecay w);  w -= v

    (the paper's Algorithm 1; torch has no LARS). The trust ratio ``local`` is computed per
    Variable in prepareStep and written over that Variable's stretch of a per-element state array,
    so the update itself stays one fused elementwise pass per buffer. That array is rewritten every
    step: getState saves it, but nothing depends on its saved value.

    prepareStep costs the same whatever the number of parameters: on the GPU three kernels per flat
    buffer (a segmented reduction of the squares of w and g over chunks of every parameter, a small
    kernel turning each parameter's chunk sums into its ratio, one pass writing the ratios over the
    trust array); on the CPU two squarings into the scratch buffer, each summed per parameter by one
    ``add.reduceat``, and a fill of each parameter's stretch. A parameter's norms depend only on its
    own elements, so the flat-buffer and per-Variable modes give identical weights.

    momRate: in [0, 1); weightDecay: >= 0; trustCoef (the paper's eta): > 0.
    """

    kernel = ElementwiseKernel(
        "T grad, T lr, T momRate, T weightDecay", "T param, T v, T trust",
        "v = momRate * v + lr * trust * (grad + weightDecay * param); param -= v;",
        "macrobatch_lars")
    # the sum of squares of one chunk of w (which == 0) or g (which == 1), lane by lane, in float64
    normsKernel = ReductionKernel(
        "raw T w, raw T g, int64 start, int64 stop, int32 which, int32 lane", "float64 squares",
        "which == 0 ? chunkSquares(w, start + lane, stop) : chunkSquares(g, start + lane, stop)",
        "a + b", "squares = a", "0", "macrobatch_lars_norms",
        preamble=f"""
        template <typename A>
        __device__ double chunkSquares(const A& x, long long k, long long stop) {{
            double sum = 0;
            for (; k < stop; k += {lanes}) {{
                double value = static_cast<double>(x[k]);
                sum += value * value;
            }}
            return sum;
        }}""")
    ratioKernel = ElementwiseKernel(
        "int64 firstChunk, int64 endChunk, raw float64 squares, float64 trustCoef, float64 weightDecay",
        "float64 ratio",
        """double wSquares = 0, gSquares = 0;
        for (long long c = firstChunk; c < endChunk; ++c) {
            wSquares += squares[2 * c];
            gSquares += squares[2 * c + 1];
        }
        double wNorm = sqrt(wSquares), gNorm = sqrt(gSquares);
        ratio = wNorm > 0 && gNorm > 0 ? trustCoef * wNorm / (gNorm + weightDecay * wNorm) : 1.0;""",
        "macrobatch_lars_ratio")
    # element i takes the ratio of the last parameter starting at or before it (a gap, the one before it)
    spreadKernel = ElementwiseKernel(
        "raw int64 starts, raw float64 ratio, int64 count", "T trust",
        """long long low = 0, high = count - 1;
        while (low < high) {
            long long mid = (low + high + 1) / 2;
            if (starts[mid] <= i) low = mid; else high = mid - 1;
        }
        trust = (T)ratio[low];""",
        "macrobatch_lars_spread")

    def __init__(self, learnRate=1e-1, momRate=0.9, weightDecay=5e-4, trustCoef=1e-3):
        super().__init__(learnRate)
        self.momRate = self.checkHyper("momRate", momRate, high=1.0)
        self.weightDecay = self.checkHyper("weightDecay", weightDecay)
        self.trustCoef = self.checkHyper("trustCoef", trustCoef, lowOpen=True)
        self.tables = []

    def setupOn(self, module, useGlobalState=True, precision="float32", lossScaler=None):
        super().setupOn(module, useGlobalState, precision, lossScaler)
        self.tables = [SegmentTable(segments, param.size)
                       for (param, _, _, _), segments in zip(self.slots, self.segments)]
        return self

    def initState(self, param):
        return xp.zeros_like(param), xp.ones_like(param)

    def stepScalars(self):
        return self.learnRate, self.momRate, self.weightDecay

    def prepareStep(self):
        """Each parameter's trust ratio, from its norms, into its stretch of the trust array; on the
        device throughout (never a host read)."""
        for (param, grad, (_, trust), scratch), table in zip(self.slots, self.tables):
            param, grad, trust = param.reshape(-1), grad.reshape(-1), trust.reshape(-1)
            if isCuda:
                squares = self.normsKernel(param, grad, table.chunkStarts, table.chunkStops, table.which,
                                           table.lanes, axis=0)
                ratios = self.ratioKernel(table.firstChunks, table.endChunks, squares.reshape(-1),
                                          self.trustCoef, self.weightDecay)
                self.spreadKernel(table.starts, ratios, len(table.spans), trust)
            else:
                self.spreadCpu(self.ratiosCpu(param, grad, scratch, table), trust, table)

    def ratiosCpu(self, param, grad, scratch, table):
        """The trust ratios of the table's parameters (float64), their squares summed in scratch."""
        norms = []
        for x in (param, grad):
            numpy.multiply(x, x, out=scratch)
            norms.append(numpy.sqrt(numpy.add.reduceat(scratch, table.bounds)[::2], dtype=numpy.float64))
        wNorm, gNorm = norms
        usable = (wNorm > 0) & (gNorm > 0)
        # the guarded denominator keeps 0 / 0 out of the branch that is not taken
        return numpy.where(usable, self.trustCoef * wNorm / numpy.where(usable, gNorm + self.weightDecay * wNorm, 1.0),
                           1.0)

    @staticmethod
    def spreadCpu(ratios, trust, table):
        for (start, stop), ratio in zip(table.spans, ratios):
            trust[start:stop] = ratio

    def updateCpu(self, param, grad, state, scratch, scalars):
        lr, momRate, weightDecay = scalars
        v, trust = state
        xp.multiply(param, weightDecay, out=scratch)
        scratch += grad
        scratch *= trust
        scratch *= lr
        v *= momRate
        v += scratch
        param -= v


class SegmentTable:
    """Where the parameters of one flat buffer (or one Variable) lie, in the forms prepareStep needs.

    spans: (start, stop) of every non-empty parameter. CPU: bounds, the starts and stops interleaved for
    ``add.reduceat`` (whose even results are the parameters' sums; a stop at the very end is left out,
    reduceat then sums to the end). GPU: the chunks (at most ``chunk`` elements, never across two
    parameters) as (1, chunks, 1) starts and stops, each parameter's range of chunks, the parameters'
    starts, and the (1, 1, 2) w-or-g and (lanes, 1, 1) lane indices that shape the reduction to
    (lanes, chunks, 2) summed over the lanes.
    """

    def __init__(self, segments, size):
        self.spans = [(start, stop) for _, start, stop in segments if stop > start]
        if not isCuda:
            bounds = [b for span in self.spans for b in span]
            self.bounds = numpy.array(bounds[:-1] if bounds[-1] == size else bounds, dtype=numpy.intp)
            return
        chunks, firstChunks = [], []
        for start, stop in self.spans:
            firstChunks.append(len(chunks))
            chunks += [(a, min(a + chunk, stop)) for a in range(start, stop, chunk)]
        chunks = numpy.array(chunks, dtype=numpy.int64).reshape(1, -1, 2)
        self.chunkStarts, self.chunkStops = toDevice(chunks[..., :1]), toDevice(chunks[..., 1:])
        self.firstChunks = toDevice(numpy.array(firstChunks, dtype=numpy.int64))
        self.endChunks = toDevice(numpy.array(firstChunks[1:] + [chunks.shape[1]], dtype=numpy.int64))
        self.starts = toDevice(numpy.array([start for start, _ in self.spans], dtype=numpy.int64))
        self.which = toDevice(numpy.arange(2, dtype=numpy.int32).reshape(1, 1, 2))
        self.lanes = toDevice(numpy.arange(lanes, dtype=numpy.int32).reshape(lanes, 1, 1))
