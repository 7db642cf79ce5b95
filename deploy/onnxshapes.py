"""ONNX converters of the modules that move, join or split arrays: Flatten, Reshape, Transpose, Pad2D, Concat,
Split, Add, Mul, and Identity and Dropout (which add nothing: Dropout is the identity at inference)."""
from .onnxgraph import inputShape, refuse


def passThrough(g, module, x, path):
    return x


def flatten(g, module, x, path):
    return g.op("Flatten", [x], path, axis=1)


def reshape(g, module, x, path):
    """Reshape to (batch,) + shape, the 0 keeping the batch size whatever it is."""
    return g.op("Reshape", [x, g.ints(f"{path}.shape", (0,) + module.shape)], path)


def transpose(g, module, x, path):
    return g.op("Transpose", [x], path, perm=module.axes)


def pad2d(g, module, x, path):
    """Pad: ONNX orders the pads all starts, then all ends; replicate is its 'edge' mode."""
    pads = g.ints(f"{path}.pads", [0, 0, module.top, module.left, 0, 0, module.bottom, module.right])
    value = g.tensor(f"{path}.value", module.value)
    return g.op("Pad", [x, pads, value], path, mode=module.numpyModes[module.mode])


def concat(g, module, xs, path):
    return g.op("Concat", xs, path, axis=module.axis)


def split(g, module, x, path):
    """Split into the part sizes the probing pass found; refused along the batch axis, whose size the
    exported graph leaves open."""
    shape = inputShape(module)
    axis = module.axis % len(shape)
    if axis == 0:
        refuse(module, path, "it splits the batch axis, which the exported graph keeps dynamic")
    sizes = module.sizes(shape[axis])
    parts = g.op("Split", [x, g.ints(f"{path}.split", sizes)], path, outputs=len(sizes), axis=axis)
    return parts if len(sizes) > 1 else [parts]


def add(g, module, xs, path):
    return g.op("Sum", xs, path)


def mul(g, module, xs, path):
    out = xs[0] if len(xs) > 1 else g.op("Identity", xs, path)
    for x in xs[1:]:
        out = g.op("Mul", [out, x], path)
    return out
