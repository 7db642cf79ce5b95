"""Activation: an elementwise nonlinearity chosen by name, with the table of those it knows."""
from typing import Callable, NamedTuple

import numpy

from ..engine.backend import isCuda, xp
from ..engine.kernels import ElementwiseKernel
from .module import Module

# GELU's tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) = x sigmoid(2 sqrt(2 / pi) (...));
# these constants are public: the ONNX converters (deploy/) write the same formulas
geluC = 0.7978845608028654
geluA = 0.044715
_geluPreamble = f"#define GELU_C {geluC!r}\n#define GELU_A {geluA!r}\n"

# SELU's fixed constants (Klambauer et al. 2017, as torch.nn.SELU): selu(x) = scale * elu(x, alpha)
seluAlpha = 1.6732632423543772848170429916717
seluScale = 1.0507009873554804934193349852946
_seluPreamble = f"#define SELU_ALPHA {seluAlpha!r}\n#define SELU_SCALE {seluScale!r}\n"


class ActivationFunctions(NamedTuple):
    """One activation's CPU and GPU paths.

    params names the constructor arguments the activation reads (("alpha",) for elu), passed in that
    order after the arrays, as scalars of the data's dtype. forward(x, out, *params) writes f(x) into
    out; backward(grad, z, *params, out=None) returns the input gradient, written into out when given,
    where z is the output y when fromOutput (the derivative is a function of y, so the input need not be
    kept) and the input x otherwise. Both work elementwise, so Activation runs them on parts of the batch
    on every core. The CUDA kernels take the same arguments: (x, *params) -> y and (grad, z, *params) -> dx.
    """
    forward: Callable
    backward: Callable
    fromOutput: bool
    params: tuple
    cudaForward: ElementwiseKernel
    cudaBackward: ElementwiseKernel


def _entry(name, forward, backward, z, cudaForward, cudaBackward, params=(), preamble=""):
    """The table entry of an activation whose backward reads z: "y" (the output) or "x" (the input)."""
    args = "".join(f", T {p}" for p in params)
    return ActivationFunctions(
        forward, backward, z == "y", params,
        ElementwiseKernel(f"T x{args}", "T y", cudaForward, f"macrobatch_{name}_forward", preamble),
        ElementwiseKernel(f"T g, T {z}{args}", "T dx", cudaBackward, f"macrobatch_{name}_backward", preamble))


def _outFor(grad, out):
    """The array a backward writes the input gradient into: out, or a new one."""
    return xp.empty_like(grad) if out is None else out


def _reluForward(x, out):
    return xp.maximum(x, 0, out=out)


def _reluBackward(grad, y, out=None):
    out = _outFor(grad, out)
    # the 0/1 mask written as floats into out, then scaled in place: no bool temporary, no mixed-type multiply
    xp.greater(y, 0, out=out, casting="unsafe")
    out *= grad
    return out


def _leakyReluForward(x, out, slope):
    xp.multiply(x, slope, out=out)
    xp.copyto(out, x, where=x > 0)
    return out


def _leakyReluBackward(grad, x, slope, out=None):
    out = _outFor(grad, out)
    xp.multiply(grad, slope, out=out)
    xp.copyto(out, grad, where=x > 0)
    return out


def _reciprocalOnePlusExp(out):
    """out = 1 / (1 + exp(out)) in place: sigmoid of -out, accurate to float precision in both tails."""
    with numpy.errstate(over="ignore"):  # exp overflows to inf for out >> 0, and 1 / (1 + inf) = 0 is right
        xp.exp(out, out=out)
    out += 1
    return xp.reciprocal(out, out=out)


def _sigmoidForward(x, out):
    return _reciprocalOnePlusExp(xp.negative(x, out=out))


def _sigmoidBackward(grad, y, out=None):
    out = _outFor(grad, out)
    xp.subtract(1, y, out=out)
    out *= y
    out *= grad
    return out


def _tanhForward(x, out):
    return xp.tanh(x, out=out)


def _tanhBackward(grad, y, out=None):
    out = _outFor(grad, out)
    xp.square(y, out=out)
    xp.subtract(1, out, out=out)
    out *= grad
    return out


def _gatedBackward(grad, p, dx):
    """Gradient of x p, p = sigmoid(k(x)) a gate: d/dx x p = p (1 + s (1 - p)), s = x k'(x).
    dx holds s on entry and grad * p (1 + s (1 - p)) on return."""
    dx *= 1 - p
    dx += 1
    dx *= p
    dx *= grad
    return dx


def _geluGate(x, out):
    """Write sigmoid(2u) = 0.5 (1 + tanh(u)) into out, u = sqrt(2 / pi) (x + a x^3); the sigmoid form
    keeps full relative precision for x << 0, where 1 + tanh(u) cancels."""
    xp.square(x, out=out)
    out *= geluA
    out += 1
    out *= x
    out *= -2 * geluC
    return _reciprocalOnePlusExp(out)


def _geluForward(x, out):
    _geluGate(x, out)
    out *= x
    return out


def _geluBackward(grad, x, out=None):
    # the gate is sigmoid(2u), so s = 2 x du/dx = 2 sqrt(2 / pi) x (1 + 3 a x^2)
    p = _geluGate(x, xp.empty_like(x))
    s = xp.square(x, out=_outFor(grad, out))
    s *= 3 * geluA
    s += 1
    s *= x
    s *= 2 * geluC
    return _gatedBackward(grad, p, s)


def _swishForward(x, out):
    _sigmoidForward(x, out)
    out *= x
    return out


def _swishBackward(grad, x, out=None):
    out = _outFor(grad, out)
    xp.copyto(out, x)
    return _gatedBackward(grad, _sigmoidForward(x, xp.empty_like(x)), out)


def _eluForward(x, out, alpha):
    # expm1 of min(x, 0): exact near 0 and never overflows for the x > 0 that copyto replaces
    xp.minimum(x, 0, out=out)
    xp.expm1(out, out=out)
    out *= alpha
    xp.copyto(out, x, where=x > 0)
    return out


def _eluBackward(grad, x, alpha, out=None):
    # from the input: alpha exp(x) = y + alpha would lose all relative precision for x << 0
    out = xp.minimum(x, 0, out=_outFor(grad, out))
    xp.exp(out, out=out)
    out *= alpha
    xp.copyto(out, 1, where=x > 0)
    out *= grad
    return out


def _seluForward(x, out):
    _eluForward(x, out, seluAlpha)
    out *= seluScale
    return out


def _seluBackward(grad, x, out=None):
    out = _eluBackward(grad, x, seluAlpha, out)
    out *= seluScale
    return out


def _softPlusForward(x, out, beta, threshold):
    # log(1 + exp(t)) = max(t, 0) + log1p(exp(-|t|)), t = beta x: no overflow, no cancellation
    t = xp.multiply(x, beta)
    linear = t > threshold
    xp.abs(t, out=out)
    xp.negative(out, out=out)
    xp.exp(out, out=out)
    xp.log1p(out, out=out)
    out += xp.maximum(t, 0, out=t)
    out /= beta
    xp.copyto(out, x, where=linear)
    return out


def _softPlusBackward(grad, x, beta, threshold, out=None):
    out = _outFor(grad, out)
    xp.multiply(x, -beta, out=out)
    linear = out < -threshold
    _reciprocalOnePlusExp(out)  # sigmoid(beta x)
    out *= grad
    xp.copyto(out, grad, where=linear)
    return out


def _clipForward(x, out, low, high):
    return xp.clip(x, low, high, out=out)


def _clipBackward(grad, y, low, high, out=None):
    # y is strictly inside (low, high) exactly where x is, so the output decides, as torch's Hardtanh
    inside = y > low
    inside &= y < high
    return xp.multiply(grad, inside, out=_outFor(grad, out))


# NaN fails every comparison, so each kernel's condition is the one whose false branch keeps a NaN input, and
# every input gradient is the output gradient times the derivative (never a select that could drop a NaN in g)
activations = {
    "relu": _entry("relu", _reluForward, _reluBackward, "y",
                   "y = x <= (T)0 ? (T)0 : x", "dx = g * (T)(y > (T)0)"),
    "leakyRelu": _entry("leaky_relu", _leakyReluForward, _leakyReluBackward, "x",
                        "y = x > (T)0 ? x : (T)(x * slope)", "dx = x > (T)0 ? g : (T)(g * slope)", ("slope",)),
    "sigmoid": _entry("sigmoid", _sigmoidForward, _sigmoidBackward, "y",
                      "y = (T)1 / ((T)1 + exp(-x))", "dx = g * y * ((T)1 - y)"),
    "tanh": _entry("tanh", _tanhForward, _tanhBackward, "y",
                   "y = tanh(x)", "dx = g * ((T)1 - y * y)"),
    "gelu": _entry(
        "gelu", _geluForward, _geluBackward, "x",
        "y = x / ((T)1 + exp((T)(-2 * GELU_C) * (x + (T)GELU_A * x * x * x)))",
        "T p = (T)1 / ((T)1 + exp((T)(-2 * GELU_C) * (x + (T)GELU_A * x * x * x)));"
        "T s = (T)(2 * GELU_C) * x * ((T)1 + (T)(3 * GELU_A) * x * x);"
        "dx = g * p * ((T)1 + s * ((T)1 - p))",
        preamble=_geluPreamble),
    "swish": _entry("swish", _swishForward, _swishBackward, "x",
                    "y = x / ((T)1 + exp(-x))",
                    "T p = (T)1 / ((T)1 + exp(-x)); dx = g * p * ((T)1 + x * ((T)1 - p))"),
    "elu": _entry("elu", _eluForward, _eluBackward, "x",
                  "y = x > (T)0 ? x : (T)(alpha * (T)expm1(x))", "dx = x > (T)0 ? g : (T)(g * alpha * (T)exp(x))",
                  ("alpha",)),
    "selu": _entry("selu", _seluForward, _seluBackward, "x",
                   "y = (T)SELU_SCALE * (x > (T)0 ? x : (T)((T)SELU_ALPHA * (T)expm1(x)))",
                   "dx = g * (T)SELU_SCALE * (x > (T)0 ? (T)1 : (T)((T)SELU_ALPHA * (T)exp(x)))",
                   preamble=_seluPreamble),
    "softPlus": _entry("softplus", _softPlusForward, _softPlusBackward, "x",
                       "T t = x * beta;"
                       "T soft = (T)(((t > (T)0 ? t : (T)0) + (T)log1p(exp(t > (T)0 ? (T)-t : t))) / beta);"
                       "y = t > threshold ? x : soft",
                       "T t = x * beta; dx = t > threshold ? g : (T)(g / ((T)1 + exp(-t)))",
                       ("beta", "threshold")),
    "clip": _entry("clip", _clipForward, _clipBackward, "y",
                   "y = x < low ? low : (x > high ? high : x)", "dx = g * (T)(y > low && y < high)",
                   ("low", "high")),
}

aliases = {"silu": "swish"}


class Activation(Module):
    """Elementwise nonlinearity, any input shape and float dtype.

    activation: one of
      "relu";
      "leakyRelu": x for x > 0, else slope * x;
      "sigmoid", "tanh";
      "gelu": the tanh approximation 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), as torch's
        gelu(approximate="tanh") (the exact form needs erf, which NumPy does not have), evaluated as
        x * sigmoid(2 sqrt(2 / pi) (x + 0.044715 x^3)), the same function without the cancellation
        of 1 + tanh for negative x;
      "swish" (or "silu"): x * sigmoid(x);
      "elu": x for x > 0, else alpha * (exp(x) - 1);
      "selu": scale * elu(x, alpha) with torch's fixed alpha ~1.6733 and scale ~1.0507;
      "softPlus": log(1 + exp(beta x)) / beta, and x itself where beta x > threshold, as torch's
        Softplus (beta > 0);
      "clip": x clamped to [low, high], as torch's Hardtanh: gradient 1 strictly inside, 0 elsewhere.
    Each activation reads only its own arguments; the others keep their defaults and are ignored.
    Every form avoids overflow and cancellation in both tails (exp of a non-positive argument only).
    NaN is never made finite, on either backend: the output is NaN exactly where the input is, and the input
    gradient is NaN wherever the output gradient is and wherever torch's is.
    """

    def __init__(self, activation, slope=0.01, alpha=1.0, beta=1.0, threshold=20.0, low=-1.0, high=1.0,
                 name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        known = aliases.get(activation, activation)
        if known not in activations:
            raise ValueError(f"unknown activation {activation!r}; expected one of "
                             f"{sorted(list(activations) + list(aliases))}")
        if not beta > 0:
            raise ValueError(f"{self.describe()}: softPlus beta must be positive, got {beta}")
        if not low < high:
            raise ValueError(f"{self.describe()}: clip needs low < high, got low={low}, high={high}")
        self.activation = activation
        self.slope, self.alpha, self.beta, self.threshold = slope, alpha, beta, threshold
        self.low, self.high = low, high
        self.functions = activations[known]

    def params(self, dtype):
        """The values of the arguments this activation reads, as scalars of dtype."""
        return [dtype.type(getattr(self, p)) for p in self.functions.params]

    def updateData(self, data):
        params = self.params(data.dtype)
        if isCuda:
            return self.functions.cudaForward(data, *params)
        out = xp.empty_like(data)
        self.splitBatch(lambda x, y: self.functions.forward(x, y, *params), data, out)
        return out

    def updateGrad(self, grad):
        z = self.data if self.functions.fromOutput else self.inData
        params = self.params(grad.dtype)
        if isCuda:
            return self.functions.cudaBackward(grad, z, *params)
        out = xp.empty_like(grad)
        self.splitBatch(lambda g, zpart, dx: self.functions.backward(g, zpart, *params, out=dx), grad, z, out)
        return out
