"""ConvND: N-d convolution (cross-correlation, like PyTorch) as a lowering to columns and one GEMM; Conv1D,
Conv2D and Conv3D set its number of spatial dims, and DeconvND reuses its geometry, weights and GEMM layout."""
import math

from ..engine.backend import isCuda, xp
from ..engine.checks import checkPositiveInt
from ..engine.dtype import defaultDtype, isHalf, statDtype
from ..engine.gemm import matmul
from ..engine.im2col import buffer, checkImageShape, col2im, im2col, ntuple, outSize
from ..engine.init import initWeights
from ..engine import parallel
from ..engine.persample import outerSumNormsSquared, outerSums, rowNormsSquared
from ..engine.shiftgrid import ShiftGrid
from ..engine.variable import Variable
from .batchnorm import BatchNorm
from .module import Module


class ConvND(Module):
    """Convolution of (batch, inmaps, *S) inputs to (batch, outmaps, *O) outputs over nd spatial dims
    (a subclass sets nd).

    size, stride, pad and dilation take an int or one int per spatial dim; pad adds that many zeros on
    each side, dilation spaces the kernel taps. groups splits the channels into that many independent
    convolutions (inmaps and outmaps divisible by it; groups == inmaps is a depthwise convolution).
    W has shape weightShape() ((outmaps, inmaps/groups, *size) here) and b (outmaps,), as in PyTorch.
    The input is lowered to a (inmaps*K, batch*O) column matrix (K = prod(size)) so that forward, weight
    gradient and input gradient are one GEMM each (one batched GEMM over the groups). The column matrix
    and the GEMM buffers are kept and reused between calls of the same shape. A backward pass after an
    eval-mode forward (saliency maps, input gradients of a frozen net) works too: the weight gradient
    lowers the input again when eval mode kept only a chunk of it.
    On NumPy, stride-1 convolutions of 32- and 64-bit data lower by shifted rows instead (engine.shiftgrid):
    the padded input is kept as flat rows, and forward, weight gradient and input gradient (a gather of
    the column gradient's taps, no col2im) each work through chunks of samples whose column matrix takes
    about chunkBytes and stays in cache; the whole one is kept only when one chunk holds it. With one group,
    the bias rides those GEMMs as a row of ones under the column matrix (no pass adding it, none summing
    its gradient). initscheme: 'he' (default), 'xavier' or 'uniform' (see engine.init), with PyTorch's
    fans: fanIn = W.shape[1]*K, fanOut = W.shape[0]*K; useBias=False drops b.
    """

    nd = None

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True, initscheme="he",
                 name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.size, self.stride = ntuple(size, "size", 1, self.nd), ntuple(stride, "stride", 1, self.nd)
        self.pad, self.dilation = ntuple(pad, "pad", 0, self.nd), ntuple(dilation, "dilation", 1, self.nd)
        groups = checkPositiveInt(groups, "groups")
        if inmaps % groups or outmaps % groups:
            raise ValueError(f"{self.describe()}: inmaps and outmaps must be divisible by groups={groups}, "
                             f"got inmaps={inmaps}, outmaps={outmaps}")
        self.inmaps, self.outmaps, self.groups = inmaps, outmaps, groups
        shape = self.weightShape()
        k = math.prod(self.size)
        self.vars["W"] = Variable(initWeights(shape, shape[1] * k, shape[0] * k, initscheme, defaultDtype))
        if useBias:
            self.vars["b"] = Variable(xp.zeros((outmaps,), dtype=defaultDtype))
        self.cols = None      # column matrix of the last input: the weight gradient needs it
        self.colsWhole = False  # whether cols is the whole last input's, not an eval chunk's
        self.colGrad = None   # gradient of the column matrix, before col2im
        self.rows = None      # (outmaps, batch*O): the GEMM output (a chunk's on the ShiftGrid), then the gradient
        self.gradFrom = None  # the gradient array the lowered gradient was made from in this backward pass
        self.gradLowered = None
        self.evalChunkBytes = 4 << 20  # column matrix size per chunk in eval mode (NumPy)
        self.grid = None      # the ShiftGrid of the last input on the shifted-rows path, else None
        self.flatIn = None    # the last input padded on its ShiftGrid: the weight gradient lowers it again
        self.flatGrad = None  # the output gradient on the ShiftGrid, behind reach zeros
        self.lanes = []       # per CPU worker, the kept buffers of the chunks it runs on the shifted-rows path
        self.chunkBytes = 2 << 20  # column matrix per chunk (shifted rows): 3-7 % faster than 4 MiB here

    def weightShape(self):
        return (self.outmaps, self.inmaps // self.groups) + self.size

    def outputSize(self, insize):
        """The spatial output sizes for spatial input sizes insize."""
        return outSize(insize, *self.geometry())

    def geometry(self):
        """(size, stride, pad, dilation): the arguments of im2col and col2im."""
        return self.size, self.stride, self.pad, self.dilation

    def checkDataShape(self, shape):
        checkImageShape(shape, self.size, self.pad, self.describe(), maps=self.inmaps, dilation=self.dilation)

    # --- layout helpers shared with DeconvND ----------------------------------------------

    def grouped(self, ary):
        """ary (rows, cols) as (groups, rows/groups, cols), so one batched matmul runs the GEMM of every
        group; ary itself for one group (the plain GEMM)."""
        return ary if self.groups == 1 else ary.reshape(self.groups, -1, ary.shape[-1])

    def groupedWeight(self):
        """W as the grouped (groups, W.shape[0]/groups, W.shape[1]*K) matrix of the GEMMs."""
        W = self.vars["W"].data
        return self.grouped(W.reshape(W.shape[0], -1))

    def groupMatmul(self, a, b, out):
        """out (rows, cols) = a @ b group by group, a and b grouped (see grouped); returns out."""
        matmul(a, b, out=self.grouped(out))
        return out

    def accumulateWeightGrad(self, a, b, biasRow=False):
        """W.grad += a @ b group by group, a and b grouped (see weightGradProduct, accumulateProduct)."""
        self.accumulateProduct(self.weightGradProduct(a, b), biasRow)

    @staticmethod
    def weightGradProduct(a, b):
        """(a @ b)^T group by group, computed as b^T @ a^T: the result is thin and the inner dimension (the
        positions) long, and OpenBLAS runs this orientation 15-40 % faster (a (inmaps*K, outmaps) result
        against (outmaps, inmaps*K), on 3x3 layers of 1 to 64 in-maps)."""
        return matmul(b.swapaxes(-1, -2), a.swapaxes(-1, -2))

    def accumulateProduct(self, product, biasRow=False):
        """W.grad += product^T (a weightGradProduct); with biasRow (one group), b's last column was ones and
        that column of the product is b.grad's."""
        if biasRow:
            self.vars["b"].accumulate(product[-1])
            product = product[:-1]
        self.vars["W"].accumulate(product.swapaxes(-1, -2))

    @staticmethod
    def toRows(ary, out):
        """ary (batch, maps, *S) as a (maps, batch*S) matrix, copied into out when it fits (a kept buffer)."""
        n, maps = ary.shape[:2]
        out = buffer(out, (maps, ary.size // maps), ary.dtype)
        xp.copyto(out.reshape(maps, n, -1), ary.reshape(n, maps, -1).swapaxes(0, 1))
        return out

    def fromRows(self, rows, out, bias=None):
        """out (batch, maps, *S) = rows (maps, batch*S) transposed, plus bias (maps,) when given, in one pass."""
        return self.withBias(rows.reshape((out.shape[1], out.shape[0]) + out.shape[2:]).swapaxes(0, 1), out, bias)

    def withBias(self, view, out, bias):
        """out = view (out's shape) plus bias (maps,) along axis 1 when given: one kernel on CuPy; on NumPy
        a copy, then the add in place (a broadcast add from a transposed view runs at a third of the speed)."""
        bias = None if bias is None else bias.reshape((1, -1) + (1,) * self.nd)
        if isCuda and bias is not None:
            return xp.add(view, bias, out=out)
        xp.copyto(out, view)
        if bias is not None:
            out += bias
        return out

    def bias(self):
        return self.vars["b"].data if "b" in self.vars else None

    def backward(self, grad, updGrad=True, updParamGrads=True):
        self.gradFrom = None  # a new backward pass: lower the gradient again even from a reused array
        return super().backward(grad, updGrad, updParamGrads)

    def lowerGrad(self, grad):
        """The GEMM operand made from grad (lowerGradOnce), once per backward pass for both gradients."""
        if self.gradFrom is not grad:
            self.gradLowered = self.lowerGradOnce(grad)
            self.gradFrom = grad
        return self.gradLowered

    # --- convolution ----------------------------------------------------------------------

    def shiftGrid(self, data):
        """The ShiftGrid of data when the NumPy path lowers it by shifted rows, else None (CuPy; 16-bit data,
        whose GEMMs round once over the whole batch; strides above 1 or a pad as large as the window)."""
        if isCuda or isHalf(data.dtype) or not ShiftGrid.applies(self.stride, self.pad, self.size, self.dilation):
            return None
        return ShiftGrid(data.shape[2:], self.size, self.pad, self.dilation)

    def biasRows(self):
        """1 when the shifted-rows path folds the bias into its GEMMs, else 0: its column matrices then end in
        a row of ones, which adds b to the forward product and gives b's gradient from the weight gradient's
        (saving a pass over the output and one over its gradient). It takes one group and a bias."""
        return int(self.grid is not None and self.groups == 1 and "b" in self.vars)

    def lowerShifted(self, flat, start, stop, out):
        """The column matrix of positions start..stop of flat written into out (the ones row below it when
        biasRows)."""
        rows = flat.shape[0] * math.prod(self.size)
        out[rows:] = 1
        self.grid.taps(flat, start, stop, out[:rows])
        return out

    def chunkSamples(self, rows, batch, dtype):
        """The samples per chunk on the shifted-rows path: at most about chunkBytes of their (rows, positions)
        matrix, in a number of chunks that the workers share evenly (3 chunks of 11 samples on 2 cores
        would leave one idle a third of the time; 4 of 8 do not)."""
        fit = max(1, self.chunkBytes // (rows * self.grid.positions * dtype.itemsize))
        chunks = -(-batch // (fit * parallel.workers)) * parallel.workers  # a whole number per worker
        return max(1, -(-batch // chunks))

    def runChunks(self, fn, batch, step):
        """fn(lane, first, last) for the chunks of step samples first..last of a batch, dealt in consecutive
        runs to the CPU workers (engine.parallel), lane being the worker's index: each lowers, multiplies and
        writes its chunks with its own kept buffers (laneBuffer), the GEMMs on one thread each. One chunk
        runs on the calling thread, its GEMMs split over the workers."""
        firsts = range(0, batch, step)

        def run(lane, i, j):
            for first in firsts[i:j]:
                fn(lane, first, min(batch, first + step))

        runs = parallel.splitRanges(len(firsts), minimum=1)
        parallel.runParallel(run, [(lane, i, j) for lane, (i, j) in enumerate(runs)])

    def laneBuffer(self, lane, name, shape, dtype, zeroed=False):
        """The kept buffer name of worker lane (see buffer), made or remade for this shape and dtype."""
        while len(self.lanes) <= lane:
            self.lanes.append({})
        kept = self.lanes[lane]
        kept[name] = buffer(kept.get(name), shape, dtype, zeroed)
        return kept[name]

    def lowerChunk(self, lane, flat, first, last, step):
        """The column matrix of samples first..last of flat (maps, columns(batch) + reach), lowered into the
        kept buffer of lane (made for step samples)."""
        rows, positions = flat.shape[0] * math.prod(self.size), self.grid.positions
        cols = self.laneBuffer(lane, "cols", (rows + self.biasRows(), step * positions), flat.dtype)
        return self.lowerShifted(flat, first * positions, last * positions, cols[:, :(last - first) * positions])

    def updateData(self, data):
        grid = self.shiftGrid(data)
        if grid is None or self.grid is None or grid.cell != self.grid.cell:
            self.flatIn, self.flatGrad, self.lanes = None, None, []  # kept zero pads are those of one layout only
        self.grid = grid
        if self.grid is not None:
            return self.shiftedForward(data)
        n = data.shape[0]
        outsize = self.outputSize(data.shape[2:])
        out = xp.empty((n, self.outmaps) + outsize, dtype=data.dtype)
        W = self.groupedWeight()
        # Train mode lowers the whole batch at once: backward needs its column matrix. Eval mode rarely
        # needs one, so on NumPy it lowers a few samples at a time and the column matrix stays in cache.
        colBytes = self.inmaps * math.prod(self.size) * math.prod(outsize) * data.dtype.itemsize
        step = n if self.train or isCuda else max(1, self.evalChunkBytes // colBytes)
        for start in range(0, n, step):
            part = data[start:start + step]
            self.cols = im2col(part, *self.geometry(), out=self.cols)
            self.rows = self.groupMatmul(W, self.grouped(self.cols),
                                         buffer(self.rows, (self.outmaps, self.cols.shape[1]), data.dtype))
            self.fromRows(self.rows, out[start:start + step], self.bias())
        self.colsWhole = step >= n
        self.gradFrom = None  # the rows buffer now holds the output, no longer a lowered gradient
        return out

    def shiftedForward(self, data):
        """updateData on the ShiftGrid: the padded input as flat rows, then per chunk of samples one lowering,
        one GEMM (with the bias as a last column of W when biasRows) and the copy of its outputs out of the
        cells, all in cache. A column matrix that fits one chunk is kept (as cols), so the weight gradient need
        not lower it again."""
        n, spatial = data.shape[0], data.shape[2:]
        self.flatIn = buffer(self.flatIn, (self.inmaps, self.grid.columns(n) + self.grid.reach), data.dtype,
                             zeroed=True)
        xp.copyto(self.grid.cells(self.flatIn, n, 0, self.pad, spatial), data)
        self.cols, self.colsWhole = None, False
        outsize = self.outputSize(spatial)
        out = xp.empty((n, self.outmaps) + outsize, dtype=data.dtype)
        W, bias = self.groupedWeight(), self.bias()
        if self.biasRows():
            W, bias = xp.concatenate((W, bias[:, None]), axis=1), None
        step = self.chunkSamples(self.inmaps * math.prod(self.size), n, data.dtype)

        def chunk(lane, first, last):
            cols = self.lowerChunk(lane, self.flatIn, first, last, step)
            rows = self.laneBuffer(lane, "rows", (self.outmaps, step * self.grid.positions), data.dtype)
            rows = self.groupMatmul(W, self.grouped(cols), rows[:, :cols.shape[1]])
            self.withBias(self.grid.cells(rows, last - first, 0, (0,) * self.nd, outsize), out[first:last], bias)

        self.runChunks(chunk, n, step)
        if step == n:  # one chunk held the whole column matrix: keep it
            self.cols, self.colsWhole = self.lanes[0]["cols"], True
        self.gradFrom = None
        return out

    def lowerGradOnce(self, grad):
        """grad (batch, outmaps, *O) as the (outmaps, batch*O) matrix of the GEMMs; on the ShiftGrid the
        (outmaps, batch*positions) view of flatGrad, zero where a position is no output."""
        if self.grid is None:
            self.rows = self.toRows(grad, self.rows)
            return self.rows
        columns, reach = self.grid.columns(grad.shape[0]), self.grid.reach
        self.flatGrad = buffer(self.flatGrad, (self.outmaps, reach + columns), grad.dtype, zeroed=True)
        return self.gradOnGrid(grad, self.flatGrad, reach)

    def gradOnGrid(self, grad, flat, start):
        """grad (batch, outmaps, *O) copied onto the ShiftGrid rows flat from column start (their pads zero);
        returns its (outmaps, columns(batch)) view."""
        xp.copyto(self.grid.cells(flat, grad.shape[0], start, (0,) * self.nd, grad.shape[2:]), grad)
        return flat[:, start:start + self.grid.columns(grad.shape[0])]

    def inputCols(self):
        """The column matrix of the whole last input: the one forward kept, or lowered again after a forward
        in chunks (im2col's in eval mode, the ShiftGrid's when the batch took more than one); on the ShiftGrid
        with its ones row when biasRows."""
        if not self.colsWhole and self.grid is not None:
            columns = self.grid.columns(self.inData.shape[0])
            shape = (self.inmaps * math.prod(self.size) + self.biasRows(), columns)
            self.cols = self.lowerShifted(self.flatIn, 0, columns, buffer(self.cols, shape, self.flatIn.dtype))
        elif not self.colsWhole:
            self.cols = im2col(self.inData, *self.geometry(), out=self.cols)
        self.colsWhole = True
        return self.cols

    def updateGrad(self, grad):
        if self.grid is not None:
            return self.shiftedInputGrad(grad)
        W = self.groupedWeight().swapaxes(-1, -2)
        rows = self.lowerGrad(grad)
        shape = (W.shape[-2] * self.groups, rows.shape[1])
        self.colGrad = self.groupMatmul(W, self.grouped(rows), buffer(self.colGrad, shape, grad.dtype))
        return col2im(self.colGrad, self.inData.shape, *self.geometry())

    def shiftedInputGrad(self, grad):
        """updateGrad on the ShiftGrid, a chunk of samples at a time: the column gradient W^T @ grad over their
        positions and the reach positions before them, then each input position sums its K taps (a gather)
        and the chunk's input gradient is copied out of the cells."""
        self.lowerGrad(grad)
        positions, reach = self.grid.positions, self.grid.reach
        out = xp.empty(self.inData.shape, dtype=grad.dtype)
        W = self.groupedWeight().swapaxes(-1, -2)
        rows = self.inmaps * math.prod(self.size)
        step = self.chunkSamples(rows, grad.shape[0], grad.dtype)

        def chunk(lane, first, last):
            start, stop = first * positions, last * positions
            colGrad = self.laneBuffer(lane, "colGrad", (rows, step * positions + reach), grad.dtype)
            self.groupMatmul(W, self.grouped(self.flatGrad[:, start:stop + reach]), colGrad[:, :stop - start + reach])
            inGrad = self.laneBuffer(lane, "inGrad", (self.inmaps, step * positions), grad.dtype)
            part = self.grid.sumTaps(colGrad, inGrad[:, :stop - start])
            xp.copyto(out[first:last], self.grid.cells(part, last - first, 0, self.pad, out.shape[2:]))

        self.runChunks(chunk, grad.shape[0], step)
        return out

    def accGradParams(self, grad):
        biasRow = self.biasRows() == 1
        if self.grid is None or self.colsWhole:
            rows = self.lowerGrad(grad)
            self.accumulateWeightGrad(self.grouped(rows), self.grouped(self.inputCols()).swapaxes(-1, -2), biasRow)
            if "b" in self.vars and not biasRow:
                self.vars["b"].accumulateSum(rows, axis=1)
            return
        self.accumulateProduct(self.chunkedWeightGrad(grad), biasRow)
        if "b" in self.vars and not biasRow:
            self.vars["b"].accumulateSum(grad.reshape(grad.shape[0], grad.shape[1], -1).sum(axis=0), axis=1)

    def chunkedWeightGrad(self, grad):
        """The weightGradProduct of the whole batch on the ShiftGrid when forward kept no whole column matrix:
        each worker lowers its chunks again and sums their products into its own buffer, then the workers'
        sums are added. When no input gradient lowered the whole gradient in this pass (a first layer's),
        each chunk's is laid out on its own into a kept buffer, which its GEMM then reads from cache (10 %
        off a 3-channel first layer's backward pass)."""
        lowered, positions, batch = self.gradFrom is grad, self.grid.positions, grad.shape[0]
        step = self.chunkSamples(self.inmaps * math.prod(self.size), batch, grad.dtype)
        sums = {}

        def chunk(lane, first, last):
            cols = self.lowerChunk(lane, self.flatIn, first, last, step)
            if lowered:
                rows = self.gradLowered[:, first * positions:last * positions]
            else:
                kept = self.laneBuffer(lane, "gradChunk", (self.outmaps, step * positions), grad.dtype, zeroed=True)
                rows = self.gradOnGrid(grad[first:last], kept, 0)
            product = self.weightGradProduct(self.grouped(rows), self.grouped(cols).swapaxes(-1, -2))
            if lane in sums:
                sums[lane] += product
            else:
                sums[lane] = product

        self.runChunks(chunk, batch, step)
        total, *others = sums.values()
        for other in others:
            total += other
        return total

    # --- inference: an eval-mode BatchNorm folded in -----------------------------------------

    def fusedWith(self, after):
        """An eval-mode BatchNorm after an eval-mode convolution, folded into it for inference (Sequential
        under withoutActivations): one convolution with W * k and b * k + shift per output map computes both,
        and the BatchNorm's passes over the output go (8.3 of 53 ms of CNN-BN's inference at batch 128)."""
        if not isinstance(after, BatchNorm) or self.train or after.train or after.maps != self.outmaps:
            return None
        return lambda data: self.foldedCall(data, after)

    def foldedCall(self, data, norm):
        """norm(self(data)) for the eval-mode BatchNorm norm, as one convolution whose weights are this one's
        scaled per output map for the call (without a bias, the shift is added to the output instead)."""
        k, shift = norm.evalAffine()
        norm.inData = norm.data = None  # as if it ran under withoutActivations: nothing of an earlier pass stays
        W, b = self.vars["W"], self.vars.get("b")
        weights, bias = W.data, None if b is None else b.data
        W.data = (weights * k.reshape((-1,) + (1,) * (weights.ndim - 1))).astype(weights.dtype, copy=False)
        if b is not None:
            b.data = (bias * k + shift).astype(bias.dtype, copy=False)
        try:
            out = self(data)
        finally:
            W.data = weights
            if b is not None:
                b.data = bias
        if b is None:
            out += shift.astype(out.dtype, copy=False).reshape((1, -1) + (1,) * self.nd)
        return out

    # --- per-sample gradients -------------------------------------------------------------

    def perSampleGrads(self, grad):
        """Each sample's W gradient (batch, *W.shape), one batched GEMM over samples and groups of the
        lowered matrices the batch gradient multiplies, and b gradient (batch, outmaps)."""
        grads = {"W": outerSums(*self.sampleFactors(grad)).reshape((grad.shape[0],) + self.vars["W"].shape)}
        if "b" in self.vars:
            grads["b"] = self.sampleBiasGrads(grad)
        return grads

    def perSampleNormsSquared(self, grad):
        """Each sample's squared gradient norm from the Gram matrices of its lowered columns and gradient
        (sum over output positions p, q of their products) where those are smaller than its W gradient."""
        norms = outerSumNormsSquared(*self.sampleFactors(grad))
        if "b" in self.vars:
            norms += rowNormsSquared(self.sampleBiasGrads(grad))
        return norms

    def sampleFactors(self, grad):
        """(a, b) of the weight gradient W_g += a_g b_g^T as (batch, groups, positions, rows/groups) views:
        here the lowered gradient and the input's column matrix."""
        cols = self.inputCols()[:self.inmaps * math.prod(self.size)]  # without the ones row of biasRows
        return self.bySample(self.lowerGrad(grad), grad.shape[0]), self.bySample(cols, grad.shape[0])

    def bySample(self, lowered, batch):
        """A lowered (rows, batch*positions) matrix as its (batch, groups, positions, rows/groups) view."""
        return lowered.reshape(self.groups, lowered.shape[0] // self.groups, batch, -1).transpose(2, 0, 3, 1)

    @staticmethod
    def sampleBiasGrads(grad):
        """Each sample's b gradient: its output gradient summed over positions, (batch, outmaps)."""
        sums = grad.reshape(grad.shape[0], grad.shape[1], -1).sum(axis=2, dtype=statDtype(grad.dtype))
        return sums.astype(grad.dtype, copy=False)
