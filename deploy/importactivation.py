"""ONNX import: activations and softmax as macrobatch Activation, PRelu and SoftMax modules."""
import numpy

from ..engine.errors import ConversionError
from ..modules.activation import Activation, seluAlpha, seluScale
from ..modules.prelu import PRelu
from ..modules.softmax import SoftMax
from .importhelpers import setWeights
from .onnxview import OnnxView, fmt


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
