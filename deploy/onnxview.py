"""OnnxView: an ONNX tensor of a graph being imported, as a reshape and a transpose of a module's output."""
from ..engine.errors import ConversionError
from ..modules.flatten import Flatten
from ..modules.node import Node
from ..modules.reshape import Reshape
from ..modules.transpose import Transpose


class OnnxView:
    """The ONNX tensor ``transpose(reshape(out, shape), perm)``, out the output of the Graph node ref.

    macrobatch arrays keep the batch axis first, ONNX graphs move it: an LSTM reads and writes
    (time, batch, ...) tensors, and torch's exporter wraps it in transposes and reshapes. Those are
    recorded here instead of built, composed, and built as Reshape and Transpose modules only when a
    module reads the tensor (materialize), so that the chains around an LSTM fold into nothing.
    Shapes are full shapes with None for the dynamic batch axis: refShape is out's, shape (batch axis
    first) the reshaped one, and ONNX axis i is axis perm[i] of the reshaped array.
    """

    def __init__(self, ref, refShape, shape=None, perm=None):
        self.ref, self.refShape = ref, tuple(refShape)
        self.shape = self.refShape if shape is None else tuple(shape)
        self.perm = tuple(range(len(self.shape))) if perm is None else tuple(perm)
        self.built = None

    @property
    def onnxShape(self):
        return tuple(self.shape[p] for p in self.perm)

    @property
    def batchAxis(self):
        return self.perm.index(0)

    def transposed(self, perm):
        """The view of ONNX Transpose(perm) of this tensor."""
        return OnnxView(self.ref, self.refShape, self.shape, [self.perm[p] for p in perm])

    def batchFirst(self):
        """(view, order): this tensor with its batch axis moved first and the others kept in order, and
        order, the ONNX axis each of its axes is (for modules that take the batch axis first)."""
        b = self.batchAxis
        order = [b] + [a for a in range(len(self.perm)) if a != b]
        return self.transposed(order), order

    def reshaped(self, target, where):
        """The view of this tensor reshaped to target (a full shape, None for the batch axis). Moved
        past the transpose when every run of axes the reshape joins or splits is one run of the reshaped
        array, in order; else the transpose is built first. ConversionError when the batch axis would mix
        with others, or is not first where the transpose must be built."""
        keep = [i for i, n in enumerate(self.shape) if n != 1]  # size-1 axes carry no layout
        perm = [keep.index(p) for p in self.perm if p in keep]
        shape = [self.shape[i] for i in keep]
        onnx, wanted = [shape[p] for p in perm], [t for t, n in enumerate(target) if n != 1]
        blocks = matchBlocks(onnx, [target[t] for t in wanted])
        if blocks is None or any([perm[k] for k in src] != list(range(perm[src[0]], perm[src[0]] + len(src)))
                                 for src, _ in blocks):
            if self.perm[0] == 0 and blocks is not None:  # transpose first, then reshape the result
                return OnnxView(self.materialize(where), self.onnxShape).reshaped(target, where)
            raise ConversionError(f"{where}: cannot reshape {fmt(self.onnxShape)} to {fmt(target)} while keeping "
                                  "the batch axis on its own (macrobatch arrays keep it first and whole)")
        newShape, axisOf = [], {}
        for src, dst in sorted(blocks, key=lambda block: perm[block[0][0]]):
            for k in dst:
                axisOf[wanted[k]] = len(newShape)
                newShape.append(target[wanted[k]])
        for t, n in enumerate(target):
            if n == 1:
                axisOf[t] = len(newShape)
                newShape.append(1)
        return OnnxView(self.ref, self.refShape, newShape, [axisOf[t] for t in range(len(target))])

    def materialize(self, where):
        """The Graph ref of this tensor itself: out with the Reshape and Transpose modules it needs (built
        once); ConversionError when its batch axis is not first, as no macrobatch array can have it."""
        if self.perm[0] != 0:
            raise ConversionError(f"{where}: takes a tensor of shape {fmt(self.onnxShape)} whose batch axis is "
                                  f"axis {self.batchAxis}; macrobatch modules take it first")
        if self.built is None:
            ref = self.ref
            if self.shape != self.refShape:
                ref = Node(Flatten() if len(self.shape) == 2 else Reshape(self.shape[1:]), ref)
            if self.perm != tuple(range(len(self.perm))):
                ref = Node(Transpose(self.perm), ref)
            self.built = ref
        return self.built


def matchBlocks(src, dst):
    """Pairs (src axes, dst axes) of runs of equal size, in order, covering both shapes; the batch axis
    (None) pairs with None alone. None when the shapes do not line up so."""
    blocks, i, j = [], 0, 0
    while i < len(src) and j < len(dst):
        a, b, i, j = [i], [j], i + 1, j + 1
        if src[a[0]] is None or dst[b[0]] is None:
            if src[a[0]] is not dst[b[0]]:
                return None
            blocks.append((a, b))
            continue
        m, n = src[a[0]], dst[b[0]]
        while m != n:
            if m < n and i < len(src) and src[i] is not None:
                m, i = m * src[i], i + 1
                a.append(i - 1)
            elif n < m and j < len(dst) and dst[j] is not None:
                n, j = n * dst[j], j + 1
                b.append(j - 1)
            else:
                return None
        blocks.append((a, b))
    return blocks if i == len(src) and j == len(dst) else None


def fmt(shape):
    """A full shape for messages, 'N' for the batch axis."""
    return "(" + ", ".join("N" if n is None else str(n) for n in shape) + ")"
