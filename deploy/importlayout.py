"""ONNX import: the operators that move, join and cut tensors (Reshape, Flatten, Transpose, Squeeze,
Unsqueeze, Concat, Split, Gather, Pad, Add, Mul, Identity, Dropout). Reshapes and transposes only change
the OnnxView of a tensor; the others become macrobatch modules. Converters as in importlayers (whose table lists them)."""
import math

from ..engine.errors import ConversionError
from ..modules.activation import Activation
from ..modules.add import Add
from ..modules.concat import Concat
from ..modules.embedder import Embedder
from ..modules.mul import Mul
from ..modules.pad2d import Pad2D
from ..modules.split import Split
from .importactivation import elementwise
from .importhelpers import refuseUsed, setWeights
from .importnorm import foldAffine
from .onnxfold import Folded, reshapeTarget
from .onnxview import OnnxView, fmt


def axesOf(imp, node, index, default=None):
    """An axes (or sizes) argument: the attribute of older opsets, or the constant input index of newer."""
    attrs = imp.attrs(node)
    key = "split" if node.op_type == "Split" else "axes" if node.op_type != "Pad" else "pads"
    if key in attrs:
        return list(attrs[key])
    value = imp.const(node, index)
    return default if value is None else value.reshape(-1).astype(int).tolist()


def restored(ref, shape, order):
    """The view of an ONNX tensor computed as a batch-first array ref of shape whose axis k is ONNX axis
    order[k] (see OnnxView.batchFirst)."""
    return OnnxView(ref, shape, perm=[order.index(a) for a in range(len(order))])


def passThrough(imp, node):
    """Identity and Dropout (inference) forward their input."""
    refuseUsed(imp, node, [1], "the dropout mask is not computed at inference")
    imp.setOutput(node, 0, imp.input(node, 0))


def reshape(imp, node):
    """Reshape to a constant or folded shape (see onnxfold.reshapeTarget), kept as a view."""
    view, shape = imp.view(node, 0), imp.input(node, 1)
    if not isinstance(shape, Folded):
        raise ConversionError(f"{imp.where(node)}: its shape is computed from the inputs' values")
    target = reshapeTarget(shape, view.onnxShape, imp.attrs(node).get("allowzero", 0), imp.where(node))
    imp.setOutput(node, 0, view.reshaped(target, imp.where(node)))


def flatten(imp, node):
    """Flatten(axis): the axes before axis and those from it joined; the batch must be alone in its part."""
    view = imp.view(node, 0)
    shape = view.onnxShape
    axis = imp.attrs(node).get("axis", 1) % (len(shape) + 1)
    parts = [shape[:axis], shape[axis:]]
    target = [None if None in part else math.prod(part) for part in parts]
    if any(None in part and math.prod(n for n in part if n is not None) != 1 for part in parts):
        raise ConversionError(f"{imp.where(node)}: flattening {fmt(shape)} at axis {axis} joins the batch axis "
                              "with others")
    imp.setOutput(node, 0, view.reshaped(target, imp.where(node)))


def transpose(imp, node):
    """Transpose, kept as a view: built as a Transpose module (batch axis first) only where a module reads it."""
    view = imp.view(node, 0)
    perm = imp.attrs(node).get("perm", list(range(len(view.onnxShape)))[::-1])
    imp.setOutput(node, 0, view.transposed(perm))


def squeeze(imp, node):
    """Squeeze of size-1 axes (all of them without axes), kept as a view."""
    view = imp.view(node, 0)
    shape = view.onnxShape
    axes = axesOf(imp, node, 1)
    axes = [i for i, n in enumerate(shape) if n == 1] if axes is None else [a % len(shape) for a in axes]
    if any(shape[a] != 1 for a in axes):
        raise ConversionError(f"{imp.where(node)}: cannot squeeze axes {axes} of {fmt(shape)}")
    target = [n for i, n in enumerate(shape) if i not in axes]
    imp.setOutput(node, 0, view.reshaped(target, imp.where(node)))


def unsqueeze(imp, node):
    """Unsqueeze, kept as a view."""
    view = imp.view(node, 0)
    target = list(view.onnxShape)
    rank = len(target) + len(axesOf(imp, node, 1))
    for a in sorted(a % rank for a in axesOf(imp, node, 1)):
        target.insert(a, 1)
    imp.setOutput(node, 0, view.reshaped(target, imp.where(node)))


def batchFirstInputs(imp, node, views, axis):
    """(refs, shapes, order, axis in them) of views brought to batch-first form alike; ConversionError
    unless they have their batch axis in one place and axis is another one."""
    if len({v.batchAxis for v in views}) > 1 or len({len(v.onnxShape) for v in views}) > 1:
        raise ConversionError(f"{imp.where(node)}: inputs of shapes {[fmt(v.onnxShape) for v in views]} do not "
                              "have their batch axis in one place")
    rank = len(views[0].onnxShape)
    axis %= rank
    if axis == views[0].batchAxis:
        raise ConversionError(f"{imp.where(node)}: works along the batch axis ({axis}), which macrobatch keeps whole")
    firsts = [v.batchFirst() for v in views]
    order = firsts[0][1]
    refs = [first.materialize(imp.where(node)) for first, _ in firsts]
    return refs, [first.onnxShape for first, _ in firsts], order, order.index(axis)


def concat(imp, node):
    """Concat of computed tensors along an axis other than the batch as Concat."""
    views = [imp.view(node, i) for i in range(len(node.input))]
    refs, shapes, order, axis = batchFirstInputs(imp, node, views, imp.attrs(node)["axis"])
    shape = list(shapes[0])
    shape[axis] = sum(s[axis] for s in shapes)
    out = imp.apply(Concat(axis), refs if len(refs) > 1 else refs[0], shape)
    imp.setOutput(node, 0, restored(out.ref, shape, order))


def splitParts(imp, ref, shape, axis, sizes):
    """(the Split node, the shape of each part) cutting ref (of shape) along axis into parts of sizes."""
    split = imp.node(Split(axis, list(sizes)), ref)
    return split, [shape[:axis] + (n,) + shape[axis + 1:] for n in sizes]


def split(imp, node):
    """Split (sizes given, or num_outputs equal parts, the last one smaller) along an axis other than the
    batch as Split, each output its part."""
    axis = imp.attrs(node).get("axis", 0)
    (ref,), (shape,), order, bfAxis = batchFirstInputs(imp, node, [imp.view(node, 0)], axis)
    length, count = shape[bfAxis], len(node.output)
    sizes = axesOf(imp, node, 1) or [-(-length // count)] * (count - 1) + [length - -(-length // count) * (count - 1)]
    splitNode, shapes = splitParts(imp, ref, tuple(shape), bfAxis, sizes)
    for i, part in enumerate(shapes):
        imp.setOutput(node, i, restored(splitNode[i], part, order))


def gather(imp, node):
    """Gather from a constant table at computed indices (Embedder), or of one constant index along a
    computed tensor's axis (x[:, -1]: a Split whose part is taken, the axis dropped)."""
    axis = imp.attrs(node).get("axis", 0)
    if not isinstance(imp.input(node, 0), OnnxView):
        embedder(imp, node, axis)
        return
    index = imp.const(node, 1)
    if index.ndim != 0:
        raise ConversionError(f"{imp.where(node)}: gathers indices of shape {index.shape} from a computed tensor; "
                              "macrobatch takes one index (a scalar) along an axis")
    view = imp.view(node, 0)
    rank = len(view.onnxShape)
    axis %= rank
    if axis == view.batchAxis:
        raise ConversionError(f"{imp.where(node)}: picks samples (axis {axis} is the batch axis)")
    first, order = view.batchFirst()
    shape, bfAxis = first.onnxShape, order.index(axis)
    splitNode, shapes = splitParts(imp, first.materialize(imp.where(node)), shape, bfAxis, [1] * shape[bfAxis])
    k = int(index) % shape[bfAxis]
    kept = shape[:bfAxis] + shape[bfAxis + 1:]
    perm = [order.index(a) - (order.index(a) > bfAxis) for a in range(rank) if a != axis]
    imp.setOutput(node, 0, OnnxView(splitNode[k], shapes[k], kept, perm))


def embedder(imp, node, axis):
    """Gather of a constant (vocabulary, size) table's rows at (batch,) or (batch, time) indices as Embedder."""
    table = imp.const(node, 0)
    view = imp.view(node, 1)
    if axis != 0 or table.ndim != 2 or len(view.onnxShape) not in (1, 2):
        raise ConversionError(f"{imp.where(node)}: an embedding takes rows (axis 0) of a matrix at (batch,) or "
                              f"(batch, time) indices, got axis {axis}, table {table.shape}, indices "
                              f"{fmt(view.onnxShape)}")
    module = setWeights(Embedder(*table.shape), {"W": table})
    imp.setOutput(node, 0, imp.apply(module, view.materialize(imp.where(node)), view.onnxShape + (table.shape[1],)))


def pad(imp, node):
    """Pad of the height and width of (batch, channels, height, width) tensors as Pad2D."""
    view = imp.view(node, 0)
    shape = view.onnxShape
    mode = imp.attrs(node).get("mode", "constant")
    pads = axesOf(imp, node, 1)
    axes = [a % len(shape) for a in (imp.const(node, 3).tolist() if imp.input(node, 3) is not None
                                     else range(len(shape)))]
    full = [0] * 2 * len(shape)
    for i, a in enumerate(axes):
        full[a], full[len(shape) + a] = pads[i], pads[len(axes) + i]
    value = imp.attrs(node).get("value", 0.0)
    if imp.input(node, 2) is not None:
        value = float(imp.const(node, 2).item())
    if (len(shape) != 4 or any(full[i] for i in (0, 1, 4, 5)) or min(full) < 0
            or mode not in ("constant", "reflect", "edge")):
        raise ConversionError(f"{imp.where(node)}: pads {full} ({mode}) of {fmt(shape)}; macrobatch pads the height "
                              "and width of (batch, channels, height, width) tensors by constant, reflect or edge")
    top, left, bottom, right = full[2], full[3], full[6], full[7]
    module = Pad2D((left, right, top, bottom), "replicate" if mode == "edge" else mode, value)
    imp.setOutput(node, 0, imp.apply(module, view.materialize(imp.where(node)),
                                     shape[:2] + (shape[2] + top + bottom, shape[3] + left + right)))


def join(cls):
    """Add, Sum and Mul of computed tensors of one shape as Add and Mul (no broadcasting); Mul(x, Sigmoid(x))
    (SiLU, as torch exports it) as Activation('swish'); Mul and Add of a per-channel constant folded into the
    normalisation before them (foldAffine)."""
    def convert(imp, node):
        values = [imp.input(node, i) for i in range(len(node.input))]
        if len(values) == 2 and not all(isinstance(v, OnnxView) for v in values):
            data = 0 if isinstance(values[0], OnnxView) else 1
            if not foldAffine(imp, node, node.input[data], imp.const(node, 1 - data)):
                raise ConversionError(f"{imp.where(node)}: {node.op_type} of a constant; macrobatch has it only as "
                                      "MatMul's bias or a normalisation's per-channel scale and bias")
            return
        if cls is Mul and len(node.input) == 2:
            for x, s in (node.input, node.input[::-1]):
                gate = imp.producer(s)
                if gate is not None and gate.op_type == "Sigmoid" and gate.input[0] == x:
                    elementwise(imp, node, Activation("swish"), imp.values[x])
                    return
        views = [imp.view(node, i) for i in range(len(node.input))]
        if len({v.onnxShape for v in views}) > 1:
            raise ConversionError(f"{imp.where(node)}: inputs of shapes {[fmt(v.onnxShape) for v in views]}; "
                                  f"macrobatch's {cls.__name__} takes one shape (no broadcasting)")
        first = views[0]
        if all((v.refShape, v.shape, v.perm) == (first.refShape, first.shape, first.perm) for v in views):
            out = imp.apply(cls(), [v.ref for v in views], first.refShape)  # elementwise: on the stored arrays
            imp.setOutput(node, 0, OnnxView(out.ref, first.refShape, first.shape, first.perm))
        else:
            out = imp.apply(cls(), [v.materialize(imp.where(node)) for v in views], first.onnxShape)
            imp.setOutput(node, 0, out)
    return convert


layoutConverters = {
    "Identity": passThrough, "Dropout": passThrough, "Reshape": reshape, "Flatten": flatten,
    "Transpose": transpose, "Squeeze": squeeze, "Unsqueeze": unsqueeze, "Concat": concat, "Split": split,
    "Gather": gather, "Pad": pad, "Add": join(Add), "Sum": join(Add), "Mul": join(Mul),
}
