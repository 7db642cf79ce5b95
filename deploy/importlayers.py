"""ONNX import: the operators that become macrobatch layers (linear maps, convolutions, pooling,
normalisations, activations, recurrent layers). Each converter takes the importer
(deploy.onnximport.OnnxImporter) and the node, and sets the node's outputs."""
import numpy

from ..engine.backend import toDevice
from ..engine.errors import ConversionError
from ..modules.activation import Activation, seluAlpha, seluScale
from ..modules.avgpool1d import AvgPool1D
from ..modules.avgpool2d import AvgPool2D
from ..modules.avgpool3d import AvgPool3D
from ..modules.batchnorm import BatchNorm
from ..modules.batchnorm1d import BatchNorm1D
from ..modules.batchnorm2d import BatchNorm2D
from ..modules.batchnorm3d import BatchNorm3D
from ..modules.concat import Concat
from ..modules.conv1d import Conv1D
from ..modules.conv2d import Conv2D
from ..modules.conv3d import Conv3D
from ..modules.deconv1d import Deconv1D
from ..modules.deconv2d import Deconv2D
from ..modules.deconv3d import Deconv3D
from ..modules.globalavgpool import GlobalAvgPool
from ..modules.groupnorm import GroupNorm
from ..modules.instancenorm2d import InstanceNorm2D
from ..modules.layernorm import LayerNorm
from ..modules.linear import Linear
from ..modules.maxpool1d import MaxPool1D
from ..modules.maxpool2d import MaxPool2D
from ..modules.maxpool3d import MaxPool3D
from ..modules.pad2d import Pad2D
from ..modules.prelu import PRelu
from ..modules.rnn import RNN
from ..modules.softmax import SoftMax
from ..modules.split import Split
from ..modules.upsample2d import Upsample2D
from .onnxfold import Folded
from .onnxrnn import gateOrder  # torch -> ONNX; its inverse takes ONNX back to torch
from .onnxview import OnnxView, fmt



def used(imp, name):
    """Whether an output is read by a node or is a graph output."""
    readers, isOutput = imp.consumers(name) if name else ([], False)
    return bool(readers) or isOutput


def refuseUsed(imp, node, indices, why):
    """ConversionError when one of the node's outputs at indices is used."""
    for i in indices:
        if i < len(node.output) and used(imp, node.output[i]):
            raise ConversionError(f"{imp.where(node)}: output {i} ({node.output[i]!r}) is used; {why}")


def imageInput(imp, node, ranks=(3, 4, 5)):
    """(ref, full ONNX shape) of input 0, a (batch, channels, *spatial) tensor."""
    view = imp.view(node, 0)
    shape = view.onnxShape
    if len(shape) not in ranks:
        raise ConversionError(f"{imp.where(node)}: expected an input of rank {' or '.join(map(str, ranks))}, "
                              f"got {fmt(shape)}")
    return view.materialize(imp.where(node)), shape


def setWeights(module, arrays, attrs=None):
    """Copy host arrays into a module's Variables and saved attrs (by name) on the device; returns module."""
    targets = [(module.vars[name].data, ary) for name, ary in arrays.items()]
    targets += [(module.attrs[name], ary) for name, ary in (attrs or {}).items()]
    for data, ary in targets:
        data[...] = toDevice(numpy.reshape(ary, data.shape), data.dtype)
    return module


# --- linear maps --------------------------------------------------------------------------

def gemm(imp, node):
    """Gemm: alpha * x @ op(B) + beta * C with B and C constants, as Linear (W = alpha * op(B))."""
    attrs = imp.attrs(node)
    if attrs.get("transA", 0):
        raise ConversionError(f"{imp.where(node)}: transA=1 (a transposed batch) has no macrobatch counterpart")
    B = imp.const(node, 1)
    W = (B.T if attrs.get("transB", 0) else B) * attrs.get("alpha", 1.0)
    C = imp.const(node, 2)
    bias = None if C is None else attrs.get("beta", 1.0) * C
    imp.setOutput(node, 0, linear(imp, node, W, bias))


def matMul(imp, node):
    """MatMul by a constant matrix, as Linear; an Add of a constant vector right after it (its only
    reader) becomes the Linear's bias."""
    W, bias, out = imp.const(node, 1), None, node
    readers, isOutput = imp.consumers(node.output[0])
    if len(readers) == 1 and not isOutput and readers[0].op_type == "Add":
        add = readers[0]
        other = imp.values.get(add.input[1] if add.input[0] == node.output[0] else add.input[0])
        static = other.static() if other is not None and not isinstance(other, OnnxView) else None
        if static is not None and static.size == W.shape[-1]:
            bias, out = static, add
            imp.absorb(add)
    imp.setOutput(out, 0, linear(imp, node, W, bias))


def linear(imp, node, W, bias):
    """A Linear of weight W (insize, outsize) and bias (or None) on input 0, a (batch, insize) tensor."""
    view = imp.view(node, 0)
    if len(view.onnxShape) != 2 or W.ndim != 2 or view.onnxShape[1] != W.shape[0]:
        raise ConversionError(f"{imp.where(node)}: Linear takes (batch, features) @ (features, outputs), got "
                              f"{fmt(view.onnxShape)} @ {W.shape}")
    K, M = W.shape
    module = Linear(K, M, useBias=bias is not None)
    arrays = {"W": W} if bias is None else {"W": W, "b": numpy.broadcast_to(bias, (1, M))}
    return imp.apply(setWeights(module, arrays), view.materialize(imp.where(node)), (None, M))


# --- convolutions and pooling ---------------------------------------------------------------

def spatialPads(attrs, inSize, kernel, strides, dilations):
    """(begin, end) pads per spatial axis, from pads or auto_pad."""
    nd, auto = len(kernel), attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", "VALID"):
        pads = list(attrs.get("pads", [0] * 2 * nd)) if auto == "NOTSET" else [0] * 2 * nd
        return pads[:nd], pads[nd:]
    begin, end = [], []
    for n, k, s, d in zip(inSize, kernel, strides, dilations):
        total = max(0, (-(-n // s) - 1) * s + (k - 1) * d + 1 - n)
        begin.append(total // 2 if auto == "SAME_UPPER" else total - total // 2)
        end.append(total - begin[-1])
    return begin, end


def geometry(attrs, shape, kernel):
    """(strides, dilations, begin pads, end pads) of a window operator on a tensor of full shape."""
    nd = len(kernel)
    strides = list(attrs.get("strides", [1] * nd))
    dilations = list(attrs.get("dilations", [1] * nd))
    return (strides, dilations) + spatialPads(attrs, shape[2:], kernel, strides, dilations)


def conv(imp, node):
    """Conv (1-3 spatial axes, strides, pads, dilations, group) as Conv1D/2D/3D; uneven 2D pads as a Pad2D
    in front of it."""
    attrs = imp.attrs(node)
    ref, shape = imageInput(imp, node)
    W, b = imp.const(node, 1), imp.const(node, 2)
    kernel = list(W.shape[2:])
    strides, dilations, begin, end = geometry(attrs, shape, kernel)
    pad = begin
    if begin != end:
        if len(kernel) != 2:
            raise ConversionError(f"{imp.where(node)}: uneven pads {begin + end} need a pad module, which "
                                  "macrobatch has for 2 spatial axes only")
        top, left, bottom, right = begin + end
        ref, pad = imp.node(Pad2D((left, right, top, bottom)), ref), [0, 0]
        shape = shape[:2] + (shape[2] + top + bottom, shape[3] + left + right)
    cls = {1: Conv1D, 2: Conv2D, 3: Conv3D}[len(kernel)]
    group = attrs.get("group", 1)
    module = cls(W.shape[1] * group, W.shape[0], kernel, strides, pad, dilations, group, useBias=b is not None)
    setWeights(module, {"W": W} if b is None else {"W": W, "b": b})
    imp.setOutput(node, 0, imp.apply(module, ref, shape[:1] + (W.shape[0],) + module.outputSize(shape[2:])))


def convTranspose(imp, node):
    """ConvTranspose with even pads and output_padding (no output_shape) as Deconv1D/2D/3D."""
    attrs = imp.attrs(node)
    ref, shape = imageInput(imp, node)
    W, b = imp.const(node, 1), imp.const(node, 2)
    kernel = list(W.shape[2:])
    if "output_shape" in attrs or attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise ConversionError(f"{imp.where(node)}: output_shape and auto_pad are not supported; give pads and "
                              "output_padding")
    strides, dilations, begin, end = geometry(attrs, shape, kernel)
    if begin != end:
        raise ConversionError(f"{imp.where(node)}: uneven pads {begin + end}; Deconv pads both sides alike")
    cls = {1: Deconv1D, 2: Deconv2D, 3: Deconv3D}[len(kernel)]
    group = attrs.get("group", 1)
    module = cls(W.shape[0], W.shape[1] * group, kernel, strides, begin, dilations, group,
                 outPad=list(attrs.get("output_padding", [0] * len(kernel))), useBias=b is not None)
    setWeights(module, {"W": W} if b is None else {"W": W, "b": b})
    imp.setOutput(node, 0, imp.apply(module, ref, shape[:1] + (module.outmaps,) + module.outputSize(shape[2:])))


def pool(imp, node):
    """MaxPool and AveragePool with even pads as MaxPool1D-3D / AvgPool1D-3D."""
    attrs = imp.attrs(node)
    ref, shape = imageInput(imp, node)
    kernel = list(attrs["kernel_shape"])
    strides, dilations, begin, end = geometry(attrs, shape, kernel)
    if begin != end:
        raise ConversionError(f"{imp.where(node)}: uneven pads {begin + end}; pooling pads both sides alike")
    ceil = bool(attrs.get("ceil_mode", 0))
    if node.op_type == "MaxPool":
        refuseUsed(imp, node, [1], "macrobatch's MaxPool gives no indices")
        module = {1: MaxPool1D, 2: MaxPool2D, 3: MaxPool3D}[len(kernel)](kernel, strides, begin, dilations, ceil)
    else:
        if any(d != 1 for d in dilations):
            raise ConversionError(f"{imp.where(node)}: dilations {dilations}; AvgPool has none")
        module = {1: AvgPool1D, 2: AvgPool2D, 3: AvgPool3D}[len(kernel)](
            kernel, strides, begin, ceil, countIncludePad=bool(attrs.get("count_include_pad", 0)))
    imp.setOutput(node, 0, imp.apply(module, ref, module.outShape(shape)))


def globalMean(imp, node, ref, shape, keepdims):
    """GlobalAvgPool of ref (of full shape) seen as ONNX's (batch, channels, 1, ...) when keepdims."""
    out = imp.apply(GlobalAvgPool(), ref, shape[:2])
    imp.setOutput(node, 0, OnnxView(out.ref, shape[:2], shape[:2] + (1,) * (len(shape) - 2) if keepdims else None))


def globalAveragePool(imp, node):
    """GlobalAveragePool as GlobalAvgPool."""
    globalMean(imp, node, *imageInput(imp, node), keepdims=True)


def reduceMean(imp, node):
    """ReduceMean over every spatial axis (torch's adaptive average pooling to 1) as GlobalAvgPool."""
    attrs = imp.attrs(node)
    ref, shape = imageInput(imp, node)
    axes = attrs.get("axes")
    if axes is None and imp.input(node, 1) is not None:
        axes = imp.const(node, 1).reshape(-1).tolist()
    if sorted(a % len(shape) for a in (axes or [])) != list(range(2, len(shape))):
        raise ConversionError(f"{imp.where(node)}: ReduceMean over axes {axes} of {fmt(shape)}; macrobatch has it "
                              "over all the spatial axes only (GlobalAvgPool)")
    globalMean(imp, node, ref, shape, keepdims=attrs.get("keepdims", 1))


def resize(imp, node):
    """Resize of the height and width of images by integer factors as Upsample2D: nearest ('asymmetric'
    coordinates rounded down, or 'half_pixel' ones, which pick the same pixels) or bilinear ('half_pixel',
    torch's align_corners=False)."""
    attrs, where = imp.attrs(node), imp.where(node)
    ref, shape = imageInput(imp, node, ranks=(4,))
    mode, coordinates = attrs.get("mode", "nearest"), attrs.get("coordinate_transformation_mode", "half_pixel")
    if imp.input(node, 2) is not None and imp.const(node, 2).size:
        scales = imp.const(node, 2).astype(float).tolist()
    elif isinstance(imp.input(node, 3), Folded):
        sizes = imp.input(node, 3).values[0].tolist()  # its batch entry may follow the probe batch: not used
        scales = [1.0, sizes[1] / shape[1]] + [n / m for n, m in zip(sizes[2:], shape[2:])]
    else:
        raise ConversionError(f"{where}: needs constant scales or sizes")
    halfPixel = coordinates in ("half_pixel", "pytorch_half_pixel")
    exact = mode == "nearest" and (halfPixel or (coordinates == "asymmetric" and
                                                 attrs.get("nearest_mode", "round_prefer_floor") == "floor"))
    if (scales[:2] != [1.0, 1.0] or any(f < 1 or f != int(f) for f in scales[2:]) or "axes" in attrs
            or not (exact or (mode == "linear" and halfPixel))):
        raise ConversionError(f"{where}: {mode} resize by {scales} with {coordinates!r} coordinates; "
                              "macrobatch upsamples height and width by integers, nearest or bilinear "
                              "(half_pixel)")
    factors = tuple(int(f) for f in scales[2:])
    module = Upsample2D(factors, "nearest" if mode == "nearest" else "bilinear")
    imp.setOutput(node, 0, imp.apply(module, ref, shape[:2] + tuple(n * f for n, f in zip(shape[2:], factors))))


# --- normalisation ------------------------------------------------------------------------

def batchNormalization(imp, node):
    """BatchNormalization (inference form) as BatchNorm1D/2D/3D with its running statistics; ONNX's
    momentum m keeps m of the running value, torch's (macrobatch's) momentum is 1 - m."""
    attrs = imp.attrs(node)
    if attrs.get("training_mode", 0):
        raise ConversionError(f"{imp.where(node)}: training_mode=1; export the model in eval mode")
    ref, shape = imageInput(imp, node, ranks=(2, 3, 4, 5))
    scale, bias, mean, var = (imp.const(node, i) for i in range(1, 5))
    cls = {2: BatchNorm1D, 3: BatchNorm1D, 4: BatchNorm2D, 5: BatchNorm3D}[len(shape)]
    module = cls(shape[1], attrs.get("epsilon", 1e-5), 1 - attrs.get("momentum", 0.9))
    setWeights(module, {"scale": scale, "bias": bias}, {"mean": mean, "var": var})
    imp.setOutput(node, 0, imp.apply(module, ref, shape))


def layerNormalization(imp, node):
    """LayerNormalization over the axes from axis on (never the batch) as LayerNorm; no bias is a zero one."""
    attrs = imp.attrs(node)
    refuseUsed(imp, node, [1, 2], "macrobatch's LayerNorm gives only the normalised tensor")
    view = imp.view(node, 0)
    shape = view.onnxShape
    axis = attrs.get("axis", -1) % len(shape)
    if axis == 0:
        raise ConversionError(f"{imp.where(node)}: normalising over the batch axis (axis 0)")
    normalized = shape[axis:]
    scale = numpy.broadcast_to(imp.const(node, 1), normalized)
    bias = numpy.broadcast_to(imp.const(node, 2, numpy.zeros(1, numpy.float32)), normalized)
    module = setWeights(LayerNorm(normalized, attrs.get("epsilon", 1e-5)), {"scale": scale, "bias": bias})
    imp.setOutput(node, 0, imp.apply(module, view.materialize(imp.where(node)), shape))


def groupNormalization(imp, node):
    """GroupNormalization as GroupNorm; scale and bias per group (opsets 18-20) spread over the channels."""
    attrs = imp.attrs(node)
    ref, shape = imageInput(imp, node)
    groups, maps = attrs["num_groups"], shape[1]
    scale, bias = imp.const(node, 1).reshape(-1), imp.const(node, 2).reshape(-1)
    if scale.size == groups != maps:
        scale, bias = numpy.repeat(scale, maps // groups), numpy.repeat(bias, maps // groups)
    module = setWeights(GroupNorm(groups, maps, attrs.get("epsilon", 1e-5)), {"scale": scale, "bias": bias})
    imp.setOutput(node, 0, imp.apply(module, ref, shape))


def instanceNormalization(imp, node):
    """InstanceNormalization as InstanceNorm2D (images) or GroupNorm with one group per channel; on a
    (N, groups, -1) reshape of (N, channels, ...) with unit scale and zero bias (torch's GroupNorm export,
    whose per-channel Mul and Add then fold into it: see foldAffine) as GroupNorm(groups, channels)."""
    attrs = imp.attrs(node)
    view, epsilon = imp.view(node, 0), attrs.get("epsilon", 1e-5)
    scale, bias = imp.const(node, 1), imp.const(node, 2)
    shape, source = view.onnxShape, view.refShape
    if (len(shape) == 3 and view.perm == (0, 1, 2) and len(source) > 2 and source[1] % shape[1] == 0
            and source[1] != shape[1] and (scale == 1).all() and (bias == 0).all()):
        out = imp.apply(GroupNorm(shape[1], source[1], epsilon), view.ref, source)
        imp.setOutput(node, 0, OnnxView(out.ref, source, view.shape))
        return
    ref, shape = imageInput(imp, node)
    maps = shape[1]
    module = InstanceNorm2D(maps, epsilon, affine=True) if len(shape) == 4 else GroupNorm(maps, maps, epsilon)
    setWeights(module, {"scale": scale, "bias": bias})
    imp.setOutput(node, 0, imp.apply(module, ref, shape))


normOps = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "InstanceNormalization")
viewOps = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity")


def foldAffine(imp, node, name, const):
    """Fold Mul or Add of a constant into the scale and bias of the normalisation computing the tensor name
    (through reshapes read by nothing else), when the constant is one value per channel (axis 1); True if
    done. torch exports GroupNorm's affine map so."""
    tensor, view = name, imp.values[name]
    while True:
        readers, isOutput = imp.consumers(tensor)
        producer = imp.producer(tensor)
        if len(readers) != 1 or isOutput or producer is None:
            return False
        if producer.op_type in normOps:
            break
        folded = [i for i in producer.input if imp.values.get(i) is imp.values[tensor]]  # a Mul or Add folded before
        if producer.op_type not in viewOps and not (producer.op_type in ("Mul", "Add") and folded):
            return False
        tensor = folded[0] if folded else producer.input[0]
    module, shape = getattr(view.ref, "module", None), view.onnxShape
    if not isinstance(module, (GroupNorm, BatchNorm)) or not module.affine or view.batchAxis != 0 \
            or len(shape) < 2 or const.ndim > len(shape):
        return False
    padded = const.reshape((1,) * (len(shape) - const.ndim) + const.shape)
    if any(n != 1 for i, n in enumerate(padded.shape) if i != 1) or padded.shape[1] not in (1, shape[1]):
        return False
    perChannel = numpy.broadcast_to(padded.reshape(-1), (shape[1],))
    scale, bias = module.vars["scale"].data, module.vars["bias"].data
    if node.op_type == "Mul":
        scale *= toDevice(perChannel, scale.dtype)
        bias *= toDevice(perChannel, bias.dtype)
    else:
        bias += toDevice(perChannel, bias.dtype)
    imp.setOutput(node, 0, view)
    return True


# --- activations --------------------------------------------------------------------------

def elementwise(imp, node, module, view=None):
    """module applied to input 0 (or view) as it is stored: an elementwise map needs no reshape nor transpose."""
    view = imp.view(node, 0) if view is None else view
    out = imp.apply(module, view.ref, view.refShape)
    imp.setOutput(node, 0, OnnxView(out.ref, view.refShape, view.shape, view.perm))


def activation(name):
    """The converter of an operator that is Activation(name) with its defaults."""
    def convert(imp, node):
        elementwise(imp, node, Activation(name))
    convert.__doc__ = f"As Activation({name!r})."
    return convert


def leakyRelu(imp, node):
    """LeakyRelu(alpha) as Activation('leakyRelu', slope=alpha)."""
    elementwise(imp, node, Activation("leakyRelu", slope=imp.attrs(node).get("alpha", 0.01)))


def elu(imp, node):
    """Elu(alpha) as Activation('elu', alpha)."""
    elementwise(imp, node, Activation("elu", alpha=imp.attrs(node).get("alpha", 1.0)))


def selu(imp, node):
    """Selu with torch's constants (stored as float32 in ONNX) as Activation('selu')."""
    attrs = imp.attrs(node)
    alpha, gamma = attrs.get("alpha", seluAlpha), attrs.get("gamma", seluScale)
    if not (numpy.isclose(alpha, seluAlpha, rtol=1e-6) and numpy.isclose(gamma, seluScale, rtol=1e-6)):
        raise ConversionError(f"{imp.where(node)}: alpha={alpha}, gamma={gamma}; macrobatch's selu has torch's")
    elementwise(imp, node, Activation("selu"))


def gelu(imp, node):
    """Gelu with approximate='tanh' as Activation('gelu'), the tanh approximation macrobatch computes."""
    if imp.attrs(node).get("approximate", "none") != "tanh":
        raise ConversionError(f"{imp.where(node)}: exact (erf) GELU; macrobatch computes the tanh approximation, "
                              "which differs by up to 1e-3: export torch.nn.GELU(approximate='tanh')")
    elementwise(imp, node, Activation("gelu"))


def clip(imp, node):
    """Clip (ReLU6, Hardtanh) as Activation('clip')."""
    attrs = imp.attrs(node)
    low, high = attrs.get("min"), attrs.get("max")
    low = float(imp.const(node, 1, numpy.array(-numpy.inf)).item()) if low is None else low
    high = float(imp.const(node, 2, numpy.array(numpy.inf)).item()) if high is None else high
    elementwise(imp, node, Activation("clip", low=low, high=high))


def pRelu(imp, node):
    """PRelu with one slope per channel (axis 1) or one for all as PRelu."""
    view = imp.view(node, 0)
    shape, slope = view.onnxShape, imp.const(node, 1)
    full = (1,) * (len(shape) - slope.ndim) + slope.shape
    if slope.size != 1 and (len(full) < 2 or full[1] != shape[1] or slope.size != shape[1]):
        raise ConversionError(f"{imp.where(node)}: slope of shape {slope.shape} for {fmt(shape)}; PRelu has "
                              "one per channel (axis 1) or one in all")
    module = setWeights(PRelu(shape[1], sharedAlpha=slope.size == 1), {"slopes": slope.reshape(-1)})
    imp.setOutput(node, 0, imp.apply(module, view.materialize(imp.where(node)), shape))


def softmax(imp, node):
    """Softmax over axis 1 (the channels, or the features of a (batch, features) tensor) as SoftMax."""
    view = imp.view(node, 0)
    shape = view.onnxShape
    axis = imp.attrs(node).get("axis", -1 if imp.opset >= 13 else 1) % len(shape)
    if axis != 1 or (imp.opset < 13 and len(shape) > 2):
        raise ConversionError(f"{imp.where(node)}: softmax over axis {axis} of {fmt(shape)}; macrobatch's SoftMax "
                              "is over axis 1")
    imp.setOutput(node, 0, imp.apply(SoftMax(), view.materialize(imp.where(node)), shape))


# --- recurrent layers ---------------------------------------------------------------------

def recurrentProblems(imp, node, attrs, mode, acts, defaults):
    """What an LSTM, GRU or RNN node asks that macrobatch's RNN cannot do, as a list of phrases."""
    op, direction = node.op_type, attrs.get("direction", "forward")
    problems = [f"activations {acts}" if mode is None or (op != "RNN" and acts != defaults) else "",
                "clip" if "clip" in attrs else "", "input_forget=1" if attrs.get("input_forget", 0) else "",
                "linear_before_reset=0 (torch's GRU applies the reset after the linear map)"
                if op == "GRU" and not attrs.get("linear_before_reset", 0) else "",
                f"direction {direction!r}" if direction not in ("forward", "bidirectional") else "",
                "sequence_lens" if len(node.input) > 4 and node.input[4] else "",
                "peepholes (P)" if len(node.input) > 7 and node.input[7] else "",
                "the cell state Y_c used (macrobatch's RNN gives no cell state)"
                if len(node.output) > 2 and used(imp, node.output[2]) else ""]
    for i in (5, 6):
        state = imp.input(node, i)
        if isinstance(state, OnnxView) or (state is not None and any(v.any() for v in state.values)):
            problems.append(f"a non-zero initial state (input {i})")
    return [p for p in problems if p]


def recurrent(imp, node):
    """LSTM, GRU and RNN (forward or bidirectional, zero initial states) as one RNN layer, the gates put
    in torch's order. getSequences when Y is used; Y_h is then cut out of it (lastStates)."""
    attrs, where, op = imp.attrs(node), imp.where(node), node.op_type
    defaults = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}[op]
    acts = list(attrs.get("activations", defaults))
    if len(acts) == 2 * len(defaults) and acts[:len(defaults)] == acts[len(defaults):]:  # listed per direction
        acts = acts[:len(defaults)]
    mode = {"LSTM": "lstm", "GRU": "gru"}.get(op) or {("Tanh",): "tanh", ("Relu",): "relu"}.get(tuple(acts))
    problems = recurrentProblems(imp, node, attrs, mode, acts, defaults)
    if problems:
        raise ConversionError(f"{where}: not supported: {'; '.join(problems)}")
    layout = attrs.get("layout", 0)
    source = imp.view(node, 0)
    view, order = source.batchFirst()
    if len(order) != 3 or order[:2] != ([1, 0] if layout == 0 else [0, 1]):
        raise ConversionError(f"{where}: input of shape {fmt(source.onnxShape)}, expected "
                              f"{'(time, N, features)' if layout == 0 else '(N, time, features)'}")
    _, T, insize = view.onnxShape
    W, R = imp.const(node, 1), imp.const(node, 2)
    H, D = attrs["hidden_size"], W.shape[0]
    G = W.shape[1] // H
    B = imp.const(node, 3, numpy.zeros((D, 2 * G * H), numpy.float32))
    sequences = used(imp, node.output[0])
    module = RNN(insize, H, mode=mode, direction="bi" if D == 2 else "uni", getSequences=sequences)
    arrays = {}
    for d in range(D):
        for key, ary in (("weight_ih", W[d]), ("weight_hh", R[d]), ("bias_ih", B[d, :G * H]),
                         ("bias_hh", B[d, G * H:])):
            arrays[RNN.paramName(key, 0, d)] = ary.reshape(G, H, -1)[numpy.argsort(gateOrder[mode])].reshape(ary.shape)
    setWeights(module, arrays)
    ref = view.materialize(where)
    statePerm = (1, 0, 2) if layout == 0 else None  # Y_h: (directions, N, hidden), or (N, directions, hidden)
    if not sequences:
        out = imp.apply(module, ref, (None, D * H))
        imp.setOutput(node, 1, OnnxView(out.ref, out.refShape, (None, D, H), statePerm))
        return
    out = imp.apply(module, ref, (None, T, D * H))  # Y: (time, directions, N, hidden), or (N, time, ...)
    imp.setOutput(node, 0, OnnxView(out.ref, out.refShape, (None, T, D, H), (1, 2, 0, 3) if layout == 0 else None))
    if len(node.output) > 1 and used(imp, node.output[1]):
        imp.setOutput(node, 1, OnnxView(lastStates(imp, out.ref, T, D), (None, 1, D * H), (None, D, H), statePerm))


def lastStates(imp, ref, T, D):
    """The final states Y_h of an RNN from its sequence output ref (N, T, D * H): the last step's forward
    states and the first step's backward ones, as (N, 1, D * H)."""
    steps = imp.node(Split(1, T), ref)
    if D == 1:
        return steps[T - 1]
    forward, backward = imp.node(Split(2, 2), steps[T - 1])[0], imp.node(Split(2, 2), steps[0])[1]
    return imp.node(Concat(2), [forward, backward])


layerConverters = {
    "Gemm": gemm, "MatMul": matMul, "Conv": conv, "ConvTranspose": convTranspose, "MaxPool": pool,
    "AveragePool": pool, "GlobalAveragePool": globalAveragePool, "ReduceMean": reduceMean, "Resize": resize,
    "BatchNormalization": batchNormalization, "LayerNormalization": layerNormalization,
    "GroupNormalization": groupNormalization, "InstanceNormalization": instanceNormalization,
    "Relu": activation("relu"), "Sigmoid": activation("sigmoid"), "Tanh": activation("tanh"),
    "Softplus": activation("softPlus"), "LeakyRelu": leakyRelu, "Elu": elu, "Selu": selu, "Gelu": gelu,
    "Clip": clip, "PRelu": pRelu, "Softmax": softmax, "LSTM": recurrent, "GRU": recurrent, "RNN": recurrent,
}
