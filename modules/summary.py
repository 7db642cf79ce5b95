"""A model's size and speed: a per-layer summary (like Keras' model.summary()) and an estimate of its
parameter count, memory and prediction latency (the seed's model_param_estimation)."""
import numbers
import statistics
import time

from ..engine.backend import synchronize, xp
from ..engine.dtype import defaultDtype
from ..engine.errors import ShapeError
from .activation import Activation
from .batchnorm import BatchNorm
from .dropout import Dropout
from .flatten import Flatten
from .identity import Identity
from .linear import Linear
from .multimodule import shapeOf
from .softmax import SoftMax

# Bytes per parameter of the data types the memory estimate is given for (the seed: params * type size).
memoryDtypes = {"float32": 4, "float16": 2, "int8": 1}

# Leaves that take a (batch, features) input whatever its width, so a vector input passes them unchanged
# on its way to the first layer that fixes the width.
_vectorPassing = (Activation, Dropout, Flatten, Identity, SoftMax)


def memoryBytes(paramCount):
    """Bytes the parameters take at each of memoryDtypes: {'float32': 4 * paramCount, ...}."""
    return {name: size * paramCount for name, size in memoryDtypes.items()}


def inferInputShape(module):
    """The per-sample input shape the first layer fixes, or None when it cannot be known from the module.

    Walks the leaves in order past those that pass any vector through (activations, dropout, flatten,
    softmax): a Linear gives (insize,), a BatchNorm on (batch, maps) gives (maps,). Anything else first
    (a Conv2D knows its channels but not H and W; pooling, Reshape) gives None.
    """
    for _, leaf in _leaves(module):
        if isinstance(leaf, _vectorPassing):
            continue
        if isinstance(leaf, Linear):
            return (leaf.insize,)
        if type(leaf) is BatchNorm:  # its subclasses take images
            return (leaf.maps,)
        return None
    return None


def inputShapeFor(module, shape=None):
    """shape (per sample, no batch axis) when given, else inferInputShape(module); ShapeError when neither."""
    if shape is not None:
        return _checkShape(shape)
    inferred = inferInputShape(module)
    if inferred is None:
        raise ShapeError(f"{module.describe()}: the input shape cannot be inferred from the first layer; "
                         "give it explicitly, per sample without the batch axis (e.g. --shape 1,28,28)")
    return inferred


def parseShape(text):
    """'C,H,W' (or 'N', 'H,W', ...) -> a tuple of positive ints, for a command line option."""
    try:
        shape = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise ValueError(f"a shape is comma-separated positive integers such as 1,28,28, got {text!r}") from None
    return _checkShape(shape)


def summary(module, inputShape, batchsize=1):
    """Run one eval-mode forward pass on zeros of shape (batchsize,) + inputShape and describe each leaf.

    Returns a host dict: 'rows', one per leaf module in forward order, each {'name': its path
    ('block.0'), 'type': class name, 'outShape': its output shape with the batch axis (None if the
    forward never reached it), 'paramCount'}; then 'inputShape' and 'outputShape' (with the batch axis),
    'paramCount' (shared Variables counted once) and 'memory' (memoryBytes). A shape the network cannot
    take raises the ShapeError of the layer that refused it. Every module's mode is left as it was.
    """
    inShape = (_checkCount(batchsize, "batchsize"),) + _checkShape(inputShape)
    leaves = list(_leaves(module))
    for _, leaf in leaves:
        leaf.data = None  # so a leaf the forward skips shows no shape instead of one from an earlier call
    with module.evaluating():
        out = module(xp.zeros(inShape, dtype=module.dtype or defaultDtype))
    rows = [{"name": path, "type": type(leaf).__name__,
             "outShape": shapeOf(leaf.data),
             "paramCount": sum(var.size for var in leaf.vars.values())} for path, leaf in leaves]
    paramCount = module.paramCount()
    return {"rows": rows, "inputShape": inShape, "outputShape": shapeOf(out), "paramCount": paramCount,
            "memory": memoryBytes(paramCount)}


def estimate(module, inputShape, batchsize=1, runs=500, warmup=10):
    """Parameter count, memory and prediction speed of module on inputs of shape (batchsize,) + inputShape.

    Times `runs` eval-mode forward passes on zeros, one by one, after `warmup` untimed ones (the first
    calls allocate buffers and, on CuPy, compile kernels); the device is synchronised around each timed
    pass, so a latency is the whole forward. Returns a host dict: 'paramCount', 'memory' (memoryBytes),
    'meanLatency' and 'medianLatency' in seconds per forward pass, 'samplesPerSecond' (batchsize / mean
    latency), 'batchsize' and 'runs'. Every module's mode is left as it was.
    """
    inShape = (_checkCount(batchsize, "batchsize"),) + _checkShape(inputShape)
    _checkCount(runs, "runs")
    if warmup < 0:
        raise ValueError(f"warmup must be a count of passes, at least 0, got {warmup}")
    data = xp.zeros(inShape, dtype=module.dtype or defaultDtype)
    latencies = []
    with module.evaluating():
        for _ in range(warmup):
            module(data)
        for _ in range(runs):
            synchronize()
            start = time.perf_counter()
            module(data)
            synchronize()
            latencies.append(time.perf_counter() - start)
    mean = statistics.fmean(latencies)
    paramCount = module.paramCount()
    return {"paramCount": paramCount, "memory": memoryBytes(paramCount), "meanLatency": mean,
            "medianLatency": statistics.median(latencies), "samplesPerSecond": batchsize / mean,
            "batchsize": batchsize, "runs": runs}


def formatSummary(info, speed=None, fileSizes=None):
    """A Keras-like text table of summary()'s result: Layer (type) | Output Shape | Param #, then the
    input shape, the total parameter count and the memory at each dtype; with estimate()'s result as
    speed, also the latency and throughput; with fileSizes ({precision: bytes} of the model's files, as
    deploy.quantize.fileSizes measures them), the size of the model file at each precision."""
    header = ("Layer (type)", "Output Shape", "Param #")
    cells = [(f"{row['name']} ({row['type']})" if row["name"] else row["type"],
              "-" if row["outShape"] is None else str(row["outShape"]), f"{row['paramCount']:,}")
             for row in info["rows"]]
    widths = [max(len(line[i]) for line in [header] + cells) for i in range(3)]

    def line(cell):
        return f"{cell[0]:<{widths[0]}}   {cell[1]:<{widths[1]}}   {cell[2]:>{widths[2]}}"

    rule = "=" * len(line(header))
    lines = [line(header), rule, *map(line, cells), rule,
             f"Input shape: {info['inputShape']}",
             f"Output shape: {info['outputShape']}",
             f"Total params: {info['paramCount']:,}"]
    lines += [f"Memory ({name}, {size} B per param): {info['memory'][name]:,} bytes ({_humanBytes(info['memory'][name])})"
              for name, size in memoryDtypes.items()]
    if fileSizes is not None:
        lines += [f"Model file ({name}): {size:,} bytes ({_humanBytes(size)})" for name, size in fileSizes.items()]
    if speed is not None:
        lines.append(f"Latency (batch {speed['batchsize']}, {speed['runs']} runs): mean {speed['meanLatency'] * 1e3:.3f} ms, "
                     f"median {speed['medianLatency'] * 1e3:.3f} ms, {speed['samplesPerSecond']:,.0f} samples/s")
    return "\n".join(lines)


def _leaves(module):
    """(path, module) of the modules without children, in forward order; path '' for a leaf root."""
    return ((prefix[:-1], mod) for prefix, mod in module.namedModules() if not mod.children())


def _checkShape(shape):
    """shape as a tuple of Python ints (NumPy's and h5py's shapes hold NumPy ints)."""
    shape = tuple(shape)
    if not shape or not all(isinstance(d, numbers.Integral) and d > 0 for d in shape):
        raise ValueError(f"an input shape is positive ints per sample, without the batch axis, got {shape}")
    return tuple(int(d) for d in shape)


def _checkCount(value, name):
    if not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _humanBytes(count):
    if count < 1024:
        return f"{count} B"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}"
