"""Activation ranges from calibration batches: the largest input magnitude each chosen layer must represent."""
import numpy

from ..engine.backend import toDevice, toHost, xp
from ..engine.dtype import defaultDtype

methods = ("minmax", "percentile")


def activationRanges(net, batches, layers, method="minmax", percentile=99.99, bins=2048):
    """{path: amax} for each path in layers (module paths as in net.namedModules, e.g. '0', 'block.1'): the
    magnitude of that module's input to map onto the int8 range, over eval-mode forward passes of batches
    (host arrays).

    method 'minmax': the largest |input| seen. 'percentile': the given percentile of |input| over every
    value of every batch, read from a histogram of `bins` bins over [0, largest] (a second pass over the
    batches; exact to one bin), which clips rare outliers so the int8 grid is finer for the bulk of the
    values. Each layer's input is read from its inData after the forward pass.
    """
    if method not in methods:
        raise ValueError(f"calibration method must be one of {', '.join(map(repr, methods))}, got {method!r}")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    batches = list(batches)
    if not batches:
        raise ValueError("calibration needs at least one batch")
    modules = {prefix[:-1]: mod for prefix, mod in net.namedModules()}
    missing = sorted(set(layers) - set(modules))
    if missing:
        raise ValueError(f"{net.describe()}: no module at {missing} to calibrate")
    targets = {path: modules[path] for path in layers}
    amax = {path: 0.0 for path in targets}
    for inputs in _forward(net, batches, targets):
        for path, x in inputs.items():
            amax[path] = max(amax[path], float(xp.abs(x).max()))
    if method == "minmax":
        return amax
    counts = {path: numpy.zeros(bins, dtype=numpy.int64) for path in targets}
    for inputs in _forward(net, batches, targets):
        for path, x in inputs.items():
            hist, _ = xp.histogram(xp.abs(x), bins=bins, range=(0.0, amax[path] or 1.0))
            counts[path] += toHost(hist)
    return {path: _percentileOf(counts[path], amax[path], percentile) for path in targets}


def _forward(net, batches, targets):
    """Yield {path: that module's input (device)} after an eval-mode forward pass of each batch."""
    with net.evaluating():
        for batch in batches:
            net(toDevice(batch, net.dtype or defaultDtype))
            yield {path: mod.inData for path, mod in targets.items()}


def _percentileOf(counts, amax, percentile):
    """The upper edge of the histogram bin (over [0, amax]) where the cumulative count reaches percentile."""
    cumulative = numpy.cumsum(counts)
    index = int(numpy.searchsorted(cumulative, cumulative[-1] * percentile / 100.0))
    return amax * (index + 1) / len(counts)
