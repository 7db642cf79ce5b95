"""Embedder: a learned lookup table from integer indices (words, tokens, categories) to vectors."""
import numbers

import numpy

from ..engine import random
from ..engine.backend import isCuda, toDevice, xp
from ..engine.checks import checkPositiveInt
from ..engine.dtype import defaultDtype, statDtype
from ..engine.errors import DtypeError, LabelError, ShapeError
from ..engine.persample import ghostFits, gramNormsSquared
from ..engine.variable import Variable
from .module import Module


class Embedder(Module):
    """Maps indices in [0, vocabulary), shaped (batch,) or (batch, time), to rows of the table W
    (vocabulary, embsize): the output is (batch, [time,] embsize). W starts standard normal, as
    torch.nn.Embedding.

    The input is indices, so there is no input gradient (updateGrad returns None): an Embedder comes
    first in a network, and handlers upload data for it as ``indexDtype`` instead of floats. The gradient
    of W is the scatter-add of the output gradient's rows at their indices: on NumPy the indices are
    sorted once and the rows of each distinct index summed with one reduceat, far quicker than
    numpy.add.at; on CuPy one add.at (atomic adds). Precision: a 16-bit table's gradient rows are summed
    in float32 (engine.dtype.statDtype; on CuPy added into a float32 table first), so a frequent index's many
    rows do not lose float16's 11-bit mantissa (or bfloat16's 8 bits).

    Indices outside [0, vocabulary) are refused by ``checkIndices`` with a LabelError naming the index
    and its position. On NumPy every call checks (no cost beyond one pass). On CuPy a per-call check
    would read a flag back from the device every batch, so handlers call ``checkIndices`` once per
    macrobatch instead (on the host block, in the reader thread), and a call only clamps the indices
    into the table, so that an unchecked stray index can never read or write outside it.

    paddingIndex (torch's padding_idx): the row of a padding token, in [-vocabulary, vocabulary)
    (negative counts from the end); it starts at zero and gets no gradient, so it stays what it is
    (zero unless set) while the rest trains. None: every row trains.
    """

    indexDtype = numpy.dtype(numpy.int32)

    def __init__(self, vocabulary, embsize, paddingIndex=None, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        self.vocabulary = checkPositiveInt(vocabulary, "vocabulary")
        self.embsize = checkPositiveInt(embsize, "embsize")
        self.paddingIndex = self.checkPaddingIndex(paddingIndex)
        self.indices = None  # the indices of the last call, as the table was read at them
        table = random.hostRng().standard_normal((vocabulary, embsize))
        if self.paddingIndex is not None:
            table[self.paddingIndex] = 0.0
        self.vars["W"] = Variable(toDevice(table, defaultDtype))

    def checkPaddingIndex(self, paddingIndex):
        """paddingIndex as a row in [0, vocabulary), or None; a ValueError unless it is an int in
        [-vocabulary, vocabulary) (bools refused)."""
        if paddingIndex is None:
            return None
        if isinstance(paddingIndex, bool) or not isinstance(paddingIndex, numbers.Integral) \
                or not -self.vocabulary <= paddingIndex < self.vocabulary:
            raise ValueError(f"paddingIndex must be None or an int in [{-self.vocabulary}, {self.vocabulary}) "
                             f"for a vocabulary of {self.vocabulary}, got {paddingIndex!r}")
        return int(paddingIndex) % self.vocabulary

    def checkDataType(self, dtype):
        if numpy.dtype(dtype).kind not in "iu":
            raise DtypeError(f"{self.describe()}: expected integer indices, got {numpy.dtype(dtype)} data; "
                             f"give int32 or int64 indices")

    def checkDataShape(self, shape):
        if len(shape) not in (1, 2):
            raise ShapeError(f"{self.describe()}: expected indices of shape (batch,) or (batch, time), "
                             f"got {tuple(shape)}")

    def checkIndices(self, data, offset=0):
        """LabelError naming the first index of data outside [0, vocabulary) and its position, the sample
        counted from offset (where data starts in the caller's whole data). data: host or device indices,
        (samples,) or (samples, time); a host array is checked on the host, a device one costs one read."""
        bad = data < 0
        bad |= data >= self.vocabulary
        if bad.any():
            flat = int(bad.reshape(-1).argmax())
            sample, *step = (int(k) for k in numpy.unravel_index(flat, data.shape))
            position = (sample + offset, *step) if step else sample + offset
            raise LabelError(f"{self.describe()}: index {data.reshape(-1)[flat].item()} at position "
                             f"{position} is out of range for a vocabulary of {self.vocabulary}")

    def updateData(self, data):
        if isCuda:
            self.indices = xp.clip(data, 0, self.vocabulary - 1)
        else:
            self.checkIndices(data)
            self.indices = data
        return xp.take(self.vars["W"].data, self.indices, axis=0)

    def updateGrad(self, grad):
        return None

    def accGradParams(self, grad):
        rows, indices = grad.reshape(-1, self.embsize), self.indices.reshape(-1)
        table = self.vars["W"].grad
        # the padding row's gradient is put back after the scatter-add: one row copied, no pass over indices
        kept = None if self.paddingIndex is None else table[self.paddingIndex].copy()
        self.scatterAdd(table, indices, rows)
        if kept is not None:
            table[self.paddingIndex] = kept

    def perSampleGrads(self, grad):
        """Each sample's table gradient (batch, vocabulary, embsize): its rows scattered into its own table
        (one scatter-add into a batch of tables), the padding row zero."""
        batch = grad.shape[0]
        indices = self.indices.reshape(batch, -1) + xp.arange(batch, dtype=xp.int64)[:, None] * self.vocabulary
        tables = xp.zeros((batch * self.vocabulary, self.embsize), dtype=grad.dtype)
        self.scatterAdd(tables, indices.reshape(-1), grad.reshape(-1, self.embsize))
        tables = tables.reshape(batch, self.vocabulary, self.embsize)
        if self.paddingIndex is not None:
            tables[:, self.paddingIndex] = 0
        return {"W": tables}

    def perSampleNormsSquared(self, grad):
        """Ghost norm over a sample's steps: sum over steps s, t reading the same (non-padding) row of
        g_s . g_t, when the (time, time) matrices are smaller than a table."""
        batch = grad.shape[0]
        indices, rows = self.indices.reshape(batch, -1), grad.reshape(batch, -1, self.embsize)
        if not ghostFits(indices.shape[1], self.vocabulary, self.embsize):
            return super().perSampleNormsSquared(grad)
        same = indices[:, :, None] == indices[:, None, :]
        if self.paddingIndex is not None:
            same &= (indices != self.paddingIndex)[:, :, None]
        return gramNormsSquared(same.astype(grad.dtype), rows)

    @staticmethod
    def scatterAdd(table, indices, rows):
        """table[indices[k]] += rows[k] for every k, repeated indices summed."""
        if isCuda:
            dtype = statDtype(table.dtype)
            if dtype == table.dtype:
                xp.add.at(table, indices, rows)
            else:  # atomic float16 adds would round at every add
                sums = xp.zeros(table.shape, dtype=dtype)
                xp.add.at(sums, indices, rows.astype(dtype))
                table += sums
            return
        order = numpy.argsort(indices, kind="stable")
        ordered = indices[order]
        starts = numpy.flatnonzero(numpy.concatenate(([True], ordered[1:] != ordered[:-1])))
        table[ordered[starts]] += numpy.add.reduceat(rows[order], starts, axis=0, dtype=statDtype(table.dtype))
