"""ONNX import: linear maps, convolutions, pooling and resizing as macrobatch layers, and the table of every layer
converter. Each converter takes the importer (deploy.onnximport.OnnxImporter) and the node, and sets the node's outputs."""
import numpy

from ..engine.errors import ConversionError
from ..modules.avgpool1d import AvgPool1D
from ..modules.avgpool2d import AvgPool2D
from ..modules.avgpool3d import AvgPool3D
from ..modules.conv1d import Conv1D
from ..modules.conv2d import Conv2D
from ..modules.conv3d import Conv3D
from ..modules.deconv1d import Deconv1D
from ..modules.deconv2d import Deconv2D
from ..modules.deconv3d import Deconv3D
from ..modules.globalavgpool import GlobalAvgPool
from ..modules.linear import Linear
from ..modules.maxpool1d import MaxPool1D
from ..modules.maxpool2d import MaxPool2D
from ..modules.maxpool3d import MaxPool3D
from ..modules.pad2d import Pad2D
from ..modules.upsample2d import Upsample2D
from .importactivation import activation, clip, elu, gelu, leakyRelu, pRelu, selu, softmax
from .importhelpers import imageInput, refuseUsed, setWeights
from .importnorm import batchNormalization, groupNormalization, instanceNormalization, layerNormalization
from .importrnn import recurrent
from .onnxfold import Folded
from .onnxview import OnnxView, fmt


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


# every operator that becomes a layer (this file's, and importnorm's, importactivation's and importrnn's)
layerConverters = {
    "Gemm": gemm, "MatMul": matMul, "Conv": conv, "ConvTranspose": convTranspose, "MaxPool": pool,
    "AveragePool": pool, "GlobalAveragePool": globalAveragePool, "ReduceMean": reduceMean, "Resize": resize,
    "BatchNormalization": batchNormalization, "LayerNormalization": layerNormalization,
    "GroupNormalization": groupNormalization, "InstanceNormalization": instanceNormalization,
    "Relu": activation("relu"), "Sigmoid": activation("sigmoid"), "Tanh": activation("tanh"),
    "Softplus": activation("softPlus"), "LeakyRelu": leakyRelu, "Elu": elu, "Selu": selu, "Gelu": gelu,
    "Clip": clip, "PRelu": pRelu, "Softmax": softmax, "LSTM": recurrent, "GRU": recurrent, "RNN": recurrent,
}
