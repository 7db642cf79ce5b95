"""Activation: an elementwise nonlinearity chosen by name, with the table of those it knows."""
from typing import Callable, NamedTuple

import numpy

from ..engine.backend import isCuda, xp
from ..engine.kernels import ElementwiseKernel
from .module import Module

# GELU's tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) = x sigmoid(2 sqrt(2 / pi) (...))
_geluC = 0.7978845608028654
_geluA = 0.044715
_geluPreamble = f"#define GELU_C {_geluC!r}\n#define GELU_A {_geluA!r}\n"


class ActivationFunctions(NamedTuple):
    """One activation's CPU and GPU paths.

    forward(x, out, slope) writes f(x) into out; backward(grad, z, slope) returns the input gradient,
    where z is the output y when fromOutput (the derivative is a function of y, so the input need
    not be kept) and the input x otherwise. The CUDA kernels take the same arguments: (x, slope) -> y
    and (grad, z, slope) -> dx. slope is only read by leakyRelu.
    """
    forward: Callable
    backward: Callable
    fromOutput: bool
    cudaForward: ElementwiseKernel
    cudaBackward: ElementwiseKernel


def _kernels(name, forward, backward, z, preamble=""):
    return (ElementwiseKernel("T x, T slope", "T y", forward, f"macrobatch_{name}_forward", preamble),
            ElementwiseKernel(f"T g, T {z}, T slope", "T dx", backward, f"macrobatch_{name}_backward", preamble))


def _reluForward(x, out, slope):
    return xp.maximum(x, 0, out=out)


def _reluBackward(grad, y, slope):
    return grad * (y > 0)


def _leakyReluForward(x, out, slope):
    xp.multiply(x, slope, out=out)
    xp.copyto(out, x, where=x > 0)
    return out


def _leakyReluBackward(grad, x, slope):
    dx = grad * slope
    xp.copyto(dx, grad, where=x > 0)
    return dx


def _reciprocalOnePlusExp(out):
    """out = 1 / (1 + exp(out)) in place: sigmoid of -out, accurate to float precision in both tails."""
    with numpy.errstate(over="ignore"):  # exp overflows to inf for out >> 0, and 1 / (1 + inf) = 0 is right
        xp.exp(out, out=out)
    out += 1
    return xp.reciprocal(out, out=out)


def _sigmoidForward(x, out, slope):
    return _reciprocalOnePlusExp(xp.negative(x, out=out))


def _sigmoidBackward(grad, y, slope):
    dx = 1 - y
    dx *= y
    dx *= grad
    return dx


def _tanhForward(x, out, slope):
    return xp.tanh(x, out=out)


def _tanhBackward(grad, y, slope):
    dx = xp.square(y)
    xp.subtract(1, dx, out=dx)
    dx *= grad
    return dx


def _geluGate(x, out):
    """Write sigmoid(2u) = 0.5 (1 + tanh(u)) into out, u = sqrt(2 / pi) (x + a x^3); the sigmoid form
    keeps full relative precision for x << 0, where 1 + tanh(u) cancels."""
    xp.square(x, out=out)
    out *= _geluA
    out += 1
    out *= x
    out *= -2 * _geluC
    return _reciprocalOnePlusExp(out)


def _geluForward(x, out, slope):
    _geluGate(x, out)
    out *= x
    return out


def _geluBackward(grad, x, slope):
    # d/dx x p = p (1 + s (1 - p)), p = sigmoid(2u), s = 2 x du/dx = 2 sqrt(2 / pi) x (1 + 3 a x^2)
    p = _geluGate(x, xp.empty_like(x))
    dx = xp.square(x)
    dx *= 3 * _geluA
    dx += 1
    dx *= x
    dx *= 2 * _geluC
    dx *= 1 - p
    dx += 1
    dx *= p
    dx *= grad
    return dx


activations = {
    "relu": ActivationFunctions(_reluForward, _reluBackward, True, *_kernels(
        "relu", "y = x > (T)0 ? x : (T)0", "dx = y > (T)0 ? g : (T)0", "y")),
    "leakyRelu": ActivationFunctions(_leakyReluForward, _leakyReluBackward, False, *_kernels(
        "leaky_relu", "y = x > (T)0 ? x : x * slope", "dx = x > (T)0 ? g : g * slope", "x")),
    "sigmoid": ActivationFunctions(_sigmoidForward, _sigmoidBackward, True, *_kernels(
        "sigmoid", "y = (T)1 / ((T)1 + exp(-x))", "dx = g * y * ((T)1 - y)", "y")),
    "tanh": ActivationFunctions(_tanhForward, _tanhBackward, True, *_kernels(
        "tanh", "y = tanh(x)", "dx = g * ((T)1 - y * y)", "y")),
    "gelu": ActivationFunctions(_geluForward, _geluBackward, False, *_kernels(
        "gelu",
        "y = x / ((T)1 + exp((T)(-2 * GELU_C) * (x + (T)GELU_A * x * x * x)))",
        "T p = (T)1 / ((T)1 + exp((T)(-2 * GELU_C) * (x + (T)GELU_A * x * x * x)));"
        "T s = (T)(2 * GELU_C) * x * ((T)1 + (T)(3 * GELU_A) * x * x);"
        "dx = g * p * ((T)1 + s * ((T)1 - p))",
        "x", _geluPreamble)),
}


class Activation(Module):
    """Elementwise nonlinearity, any input shape and float dtype.

    activation: one of "relu", "leakyRelu" (x for x > 0, else slope * x), "sigmoid", "tanh",
    "gelu". gelu is the tanh approximation 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), as
    torch's gelu(approximate="tanh"): the exact form needs erf, which NumPy does not have. It is
    evaluated as x * sigmoid(2 sqrt(2 / pi) (x + 0.044715 x^3)), the same function without the
    cancellation of 1 + tanh for negative x.
    """

    def __init__(self, activation, slope=0.01, name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        if activation not in activations:
            raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(activations)}")
        self.activation, self.slope = activation, slope
        self.functions = activations[activation]

    def updateData(self, data):
        slope = data.dtype.type(self.slope)
        if isCuda:
            return self.functions.cudaForward(data, slope)
        return self.functions.forward(data, xp.empty_like(data), slope)

    def updateGrad(self, grad):
        z = self.data if self.functions.fromOutput else self.inData
        slope = grad.dtype.type(self.slope)
        if isCuda:
            return self.functions.cudaBackward(grad, z, slope)
        return self.functions.backward(grad, z, slope)
