"""Finite-difference checks of analytic gradients, for tests and for anyone writing a module or cost.

Run them in float64 on the CPU backend: central differences with eps ~1e-6 then agree with the
analytic gradient to ~1e-7 relative, so a wrong term shows up clearly.
"""
import numpy

from .backend import toDevice, toHost


def numericGrad(f, x, eps=1e-6):
    """d f() / d x by central differences; f returns a scalar and reads x (a device array) in place."""
    host = toHost(x).astype(numpy.float64)
    grad = numpy.empty_like(host)
    for i in numpy.ndindex(host.shape):
        orig = host[i]
        x[i] = orig + eps
        plus = float(f())
        x[i] = orig - eps
        minus = float(f())
        x[i] = orig
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def _assertClose(analytic, numeric, what, rtol, atol):
    analytic = toHost(analytic)
    if not numpy.allclose(analytic, numeric, rtol=rtol, atol=atol):
        err = numpy.abs(analytic - numeric).max()
        raise AssertionError(f"{what}: analytic and numeric gradients differ by up to {err:.3g}\n"
                             f"analytic:\n{analytic}\nnumeric:\n{numeric}")


def checkModuleGrads(module, data, rtol=1e-5, atol=1e-7, eps=1e-6, seed=0):
    """Check module.backward against finite differences of L = sum(module(data) * R) for a fixed
    random R, w.r.t. the input and every parameter. Modules with randomness (dropout) must be
    in eval mode or otherwise deterministic across calls."""
    data = toDevice(data)
    out = module(data)
    weights = toDevice(numpy.random.default_rng(seed).standard_normal(out.shape), out.dtype)

    def loss():
        return (module(data) * weights).sum()

    module.zeroGradParams()
    module(data)
    inGrad = toHost(module.backward(weights.copy()))
    paramGrads = {k: toHost(v.grad).copy() for k, v in module.getVariables().items()}
    _assertClose(inGrad, numericGrad(loss, data, eps), f"{module.describe()} input gradient", rtol, atol)
    for key, var in module.getVariables().items():
        _assertClose(paramGrads[key], numericGrad(loss, var.data, eps), f"{module.describe()} d/d{key}", rtol, atol)


def checkCostGrad(cost, pred, target, rtol=1e-5, atol=1e-7, eps=1e-6):
    """Check the gradient a cost returns against finite differences of its batch error."""
    pred = toDevice(pred)

    def loss():
        error, _ = cost(pred, target)
        return error

    _, grad = cost(pred, target)
    grad = toHost(grad).copy()
    _assertClose(grad, numericGrad(loss, pred, eps), f"{type(cost).__name__} gradient", rtol, atol)
