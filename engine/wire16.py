"""Wire16: float32 arrays as 16-bit words, for all-reduces that move half the bytes (issue 8).

``float16`` is IEEE half precision (the cast NumPy and CuPy do); ``bfloat16`` keeps float32's 8-bit
exponent and 7 bits of mantissa: the top half of the float32 word, rounded to nearest even. NumPy and
CuPy have no bfloat16 dtype, so both kinds travel as uint16 words, encoded and decoded with the same
array operations on either backend (each array's own module: host words for MPI, device words for
NCCL). NCCL sums such words natively; MPI through ``addInto``.
"""
import numpy

from .backend import xp

kinds = ("float16", "bfloat16")


class Wire16:
    """Encodes float32 arrays to uint16 words of one kind and back, with scratch reused per size."""

    def __init__(self, kind):
        if kind not in kinds:
            raise ValueError(f"16-bit all-reduce: kind must be one of {kinds}, got {kind!r}")
        self.kind = kind
        self.scratch = {}

    def encode(self, ary, out, scratch=None):
        """ary (float32) rounded into out (uint16 words of the same size); bfloat16 works in a uint32
        scratch array of ary's size (default: one kept per size)."""
        if ary.dtype != numpy.float32:
            raise TypeError(f"16-bit all-reduce: gradients must be float32, got {ary.dtype}")
        if self.kind == "float16":
            out.view(numpy.float16)[...] = ary
            return out
        mod = arrayModule(ary)
        word = ary.view(numpy.uint32)
        tmp = scratch if scratch is not None else self.scratch.get((mod.__name__, ary.size))
        if tmp is None:
            tmp = self.scratch[mod.__name__, ary.size] = mod.empty(ary.size, dtype=numpy.uint32)
        mod.right_shift(word, 16, out=tmp)  # round half to even: add 0x7FFF plus the lowest kept bit
        tmp &= 1
        tmp += 0x7FFF
        tmp += word
        tmp >>= 16
        out[...] = tmp
        return out

    def decode(self, bits, out):
        """The float32 values of the words bits, into out."""
        if self.kind == "float16":
            out[...] = bits.view(numpy.float16)
            return out
        word = out.view(numpy.uint32)
        word[...] = bits
        word <<= 16
        return out

    def addInto(self, a, b):
        """b += a on host words: the reduction MPI runs (device words go through NCCL instead)."""
        if self.kind == "float16":
            b.view(numpy.float16)[...] += a.view(numpy.float16)
            return
        total = self.decode(a, numpy.empty(a.size, dtype=numpy.float32))
        total += self.decode(b, numpy.empty(b.size, dtype=numpy.float32))
        self.encode(total, b, scratch=numpy.empty(a.size, dtype=numpy.uint32))  # MPI's pieces vary in size


def arrayModule(ary):
    """NumPy for a host array, else the backend's module (CuPy)."""
    return numpy if isinstance(ary, numpy.ndarray) else xp
