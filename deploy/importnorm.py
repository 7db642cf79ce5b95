"""ONNX import: the normalisations, and the per-channel Mul and Add folded into them."""
import numpy

from ..engine.backend import toDevice
from ..engine.errors import ConversionError
from ..modules.batchnorm import BatchNorm
from ..modules.batchnorm1d import BatchNorm1D
from ..modules.batchnorm2d import BatchNorm2D
from ..modules.batchnorm3d import BatchNorm3D
from ..modules.groupnorm import GroupNorm
from ..modules.instancenorm2d import InstanceNorm2D
from ..modules.layernorm import LayerNorm
from .importhelpers import imageInput, refuseUsed, setWeights
from .onnxview import OnnxView


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
