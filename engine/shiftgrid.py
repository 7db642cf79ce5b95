"""ShiftGrid: the flat layout in which a stride-1 convolution's taps are shifts of whole rows (NumPy).

im2col copies rows as short as one image row (8-32 floats) once per kernel offset and col2im adds them
back the same way; NumPy's per-row overhead, not memory bandwidth, sets their speed. Here each channel of
a padded batch is one flat row in which every sample takes prod(S + pad) positions: each spatial axis
keeps its data and only its leading pad, the trailing pad being the next cell's leading one (the zeros
are shared). A tap at kernel offset k then reads the row shifted by one fixed amount off_k for every
output position, so the column matrix of a chunk of positions is one strided copy of long rows; the
input gradient is the GEMM to the column gradient of a chunk (and the reach positions before it), then
each position sums its K taps from it: a gather through one strided view, no scatter-add. The price is
the shared-pad positions, computed and dropped: prod(S + pad) / prod(O) of the GEMM work, 1.07-1.27 on
3x3 "same" convolutions of 32 to 8 pixels. It holds for stride 1 with pad < the dilated window on every
axis (then the outputs fit in a cell).
"""
import math

import numpy

from .im2col import extent


class ShiftGrid:
    """The flat layout of a batch of spatial size spatial for a stride-1 window of size (spaced by
    dilation) padded by pad: positions per sample, and the shift of each kernel offset."""

    def __init__(self, spatial, size, pad, dilation):
        self.cell = tuple(s + p for s, p in zip(spatial, pad))
        pitches = [math.prod(self.cell[i + 1:]) for i in range(len(self.cell))]
        self.positions = math.prod(self.cell)
        self.size = tuple(size)
        self.steps = tuple(d * p for d, p in zip(dilation, pitches))
        self.reach = sum((k - 1) * s for k, s in zip(size, self.steps))  # the largest shift, off_K-1

    @staticmethod
    def applies(stride, pad, size, dilation):
        """Whether a window of this geometry fits the layout: stride 1, pad below the dilated window."""
        return all(s == 1 for s in stride) and all(p < e for p, e in zip(pad, extent(size, dilation)))

    def columns(self, batch):
        """The number of flat positions of a batch: every sample's cell, outputs and dropped ones."""
        return batch * self.positions

    def cells(self, flat, batch, start, lead, sizes):
        """The (batch, maps, *sizes) view of flat (maps, >= start + columns(batch)) whose sample n, element
        s sits at start + n*positions + the flat index of lead + s in its cell."""
        grid = flat[:, start:start + self.columns(batch)].reshape((flat.shape[0], batch) + self.cell)
        return grid[(slice(None), slice(None)) + tuple(slice(a, a + s) for a, s in zip(lead, sizes))].swapaxes(0, 1)

    def taps(self, flat, start, stop, out):
        """Copy the (maps*K, stop - start) column matrix of positions start..stop of flat (a C-contiguous
        (maps, >= stop + reach)) into out: row (m, k) is row m shifted by off_k (rows ordered like a weight's
        (maps, *size))."""
        item = flat.itemsize
        view = _strided(flat, start * item, (flat.shape[0],) + self.size + (stop - start,),
                        (flat.strides[0],) + tuple(s * item for s in self.steps) + (item,))
        numpy.copyto(out.reshape(view.shape), view)
        return out

    def sumTaps(self, cols, out):
        """out (maps, w)[m, q] = the sum over kernel offsets k of cols[(m, k), q + reach - off_k], cols a
        C-contiguous (maps*K, >= w + reach): the adjoint of taps, as a gather. Column j of cols belongs to
        position start - reach + j when out holds positions start..start + w, so each position sums the
        taps of the outputs that read it."""
        item, row = cols.itemsize, cols.strides[0]
        kPitches = [math.prod(self.size[i + 1:]) for i in range(len(self.size))]
        view = _strided(cols, self.reach * item, (out.shape[0],) + self.size + (out.shape[1],),
                        (row * math.prod(self.size),) + tuple(p * row - s * item for p, s in zip(kPitches, self.steps))
                        + (item,))
        return numpy.sum(view, axis=tuple(range(1, 1 + len(self.size))), out=out)


def _strided(ary, offset, shape, strides):
    """A view of the C-contiguous ary with this shape and strides from byte offset: what as_strided makes,
    built directly (as_strided's interface object costs tens of microseconds, paid per chunk)."""
    return numpy.ndarray(shape, ary.dtype, buffer=ary, offset=offset, strides=strides)
