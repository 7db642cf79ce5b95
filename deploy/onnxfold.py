"""Folded: a constant of an ONNX graph being imported, computed at import time for two batch sizes."""
import numpy
from onnx.reference import ReferenceEvaluator

from ..engine.errors import ConversionError
from .onnxview import fmt

# Exporters compute shapes in the graph (Shape, Gather, Unsqueeze, Concat feeding a Reshape) and zero
# states the size of the batch. Each is folded twice, for a batch of each of these sizes: where the two
# agree the value is a constant, where they differ it follows the batch.
probes = (3, 5)


class Folded:
    """A tensor known at import time: one array per probe batch size (the same array for weights)."""

    def __init__(self, values):
        self.values = tuple(values)

    @classmethod
    def constant(cls, ary):
        return cls([ary] * len(probes))

    def static(self):
        """The value when it does not depend on the batch size, else None."""
        first = self.values[0]
        same = all(v.shape == first.shape and numpy.array_equal(v, first) for v in self.values[1:])
        return first if same else None


def foldNode(node, inputs, opset):
    """The outputs of an ONNX node whose inputs are all Folded (None for an omitted input), as Folded,
    computed by onnx's reference implementation of the operator at the graph's opset."""
    evaluator = ReferenceEvaluator(node, opsets={"": opset})
    runs = [evaluator.run(None, {name: value.values[k] for name, value in zip(node.input, inputs) if name})
            for k in range(len(probes))]
    return [Folded(numpy.asarray(run[i]) for run in runs) for i in range(len(node.output))]


def shapeOfView(onnxShape, start=0, end=None):
    """ONNX Shape of a data tensor of this full shape (None for the batch axis) as Folded, with start and
    end as the operator's attributes."""
    dims = onnxShape[start:end]
    return Folded(numpy.array([b if n is None else n for n in dims], dtype=numpy.int64) for b in probes)


def reshapeTarget(folded, inShape, allowzero, where):
    """The full output shape (None for the batch axis) of ONNX Reshape of a tensor of inShape to the
    folded target: an entry equal to the probe batch size is the batch axis, 0 copies the input's size
    (unless allowzero), one -1 takes what is left (or is the batch axis, when the rest make one sample);
    ConversionError for a target computed otherwise."""
    values = [numpy.asarray(v).reshape(-1).tolist() for v in folded.values]
    target = []
    for i, entries in enumerate(zip(*values)):
        if list(entries) == list(probes):
            target.append(None)
        elif len(set(entries)) > 1:
            raise ConversionError(f"{where}: its shape input {values[0]} depends on the batch size in a way "
                                  "macrobatch cannot keep (only the batch axis itself may follow it)")
        elif entries[0] == 0 and not allowzero:
            if i >= len(inShape):
                raise ConversionError(f"{where}: shape {values[0]} copies axis {i} of an input of rank {len(inShape)}")
            target.append(inShape[i])
        else:
            target.append(int(entries[0]))
    size = numpy.prod([n for n in inShape if n is not None])
    known = numpy.prod([n for n in target if n not in (None, -1)])
    if None not in target and target.count(-1) == 1 and known == size:  # x.reshape(-1, features): -1 is the batch
        target[target.index(-1)] = None
    if target.count(None) != 1 or target.count(-1) > 1:
        raise ConversionError(f"{where}: cannot reshape {fmt(inShape)} to {values[0]} keeping one batch axis")
    if -1 in target:
        target[target.index(-1)] = int(size // known)
    return tuple(target)
