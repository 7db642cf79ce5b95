"""ONNX converters of the activations: Activation by name (each activation of modules/activation.py), PRelu and
SoftMax. Those without an ONNX operator of their own at opset 17 (gelu's tanh form, swish, softPlus with beta
and threshold) are composed from elementwise operators, as macrobatch computes them."""
import numpy

from ..modules.activation import geluA, geluC, seluAlpha, seluScale, aliases
from .onnxgraph import inputShape


def _scalar(g, path, value):
    return g.tensor(path, numpy.asarray(value))


def _gelu(g, m, x, path):
    # x * sigmoid(2 sqrt(2 / pi) (x + a x^3)), macrobatch's form of the tanh approximation
    t = g.op("Mul", [x, x], path)
    t = g.op("Mul", [t, _scalar(g, f"{path}.a", geluA)], path)
    t = g.op("Add", [t, _scalar(g, f"{path}.one", 1.0)], path)
    t = g.op("Mul", [t, x], path)
    t = g.op("Mul", [t, _scalar(g, f"{path}.c", 2 * geluC)], path)
    return g.op("Mul", [x, g.op("Sigmoid", [t], path)], path)


def _swish(g, m, x, path):
    return g.op("Mul", [x, g.op("Sigmoid", [x], path)], path)


def _softPlus(g, m, x, path):
    # log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (torch's Softplus)
    t = g.op("Mul", [x, _scalar(g, f"{path}.beta", m.beta)], path)
    soft = g.op("Div", [g.op("Softplus", [t], path), _scalar(g, f"{path}.beta", m.beta)], path)
    linear = g.op("Greater", [t, _scalar(g, f"{path}.threshold", m.threshold)], path)
    return g.op("Where", [linear, x, soft], path)


def _clip(g, m, x, path):
    return g.op("Clip", [x, _scalar(g, f"{path}.low", m.low), _scalar(g, f"{path}.high", m.high)], path)


_byName = {
    "relu": lambda g, m, x, path: g.op("Relu", [x], path),
    "leakyRelu": lambda g, m, x, path: g.op("LeakyRelu", [x], path, alpha=float(m.slope)),
    "sigmoid": lambda g, m, x, path: g.op("Sigmoid", [x], path),
    "tanh": lambda g, m, x, path: g.op("Tanh", [x], path),
    "gelu": _gelu,
    "swish": _swish,
    "elu": lambda g, m, x, path: g.op("Elu", [x], path, alpha=float(m.alpha)),
    "selu": lambda g, m, x, path: g.op("Selu", [x], path, alpha=seluAlpha, gamma=seluScale),
    "softPlus": _softPlus,
    "clip": _clip,
}


def activation(g, module, x, path):
    name = module.activation
    return _byName[aliases.get(name, name)](g, module, x, path)


def prelu(g, module, x, path):
    """PRelu with the slopes shaped (maps, 1, ...) to broadcast along axis 1 of the input."""
    slopes = module.vars["slopes"].data.reshape((-1,) + (1,) * (len(inputShape(module)) - 2))
    return g.op("PRelu", [x, g.tensor(f"{path}.slopes", slopes)], path)


def softmax(g, module, x, path):
    return g.op("Softmax", [x], path, axis=1)
