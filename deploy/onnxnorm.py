"""ONNX converters of the normalisations: BatchNorm (1D, 2D, 3D) with its running statistics, as in eval mode;
LayerNorm; GroupNorm and InstanceNorm2D (opset 17 has no GroupNormalization: InstanceNormalization over the
groups, then the per-map affine)."""
import numpy

from .onnxgraph import inputShape


def _affine(g, module, path, shape):
    """scale and bias initializers; ones and zeros of shape for a module without affine parameters."""
    if module.affine:
        return [g.tensor(f"{path}.{key}", module.vars[key].data) for key in ("scale", "bias")]
    return [g.tensor(f"{path}.scale", numpy.ones(shape)), g.tensor(f"{path}.bias", numpy.zeros(shape))]


def batchNorm(g, module, x, path):
    """BatchNormalization with the running mean and variance: eval mode's normalisation."""
    stats = [g.tensor(f"{path}.{key}", module.attrs[key]) for key in ("mean", "var")]
    return g.op("BatchNormalization", [x, *_affine(g, module, path, (module.maps,)), *stats], path,
                epsilon=float(module.epsilon))


def layerNorm(g, module, x, path):
    return g.op("LayerNormalization", [x, *_affine(g, module, path, module.normalizedShape)], path,
                axis=-len(module.normalizedShape), epsilon=float(module.epsilon))


def groupNorm(g, module, x, path):
    """InstanceNormalization itself for one group per map on images or volumes; otherwise on the
    (batch, groups, rest) view, then scale and bias per map."""
    rank = len(inputShape(module))
    if module.numGroups == module.maps and rank >= 3:
        return g.op("InstanceNormalization", [x, *_affine(g, module, path, (module.maps,))], path,
                    epsilon=float(module.epsilon))
    groups = module.numGroups
    view = g.op("Reshape", [x, g.ints(f"{path}.groups", [0, groups, -1])], path)
    ones, zeros = g.tensor(f"{path}.ones", numpy.ones(groups)), g.tensor(f"{path}.zeros", numpy.zeros(groups))
    normed = g.op("InstanceNormalization", [view, ones, zeros], path, epsilon=float(module.epsilon))
    y = g.op("Reshape", [normed, g.op("Shape", [x], path)], path)
    if not module.affine:
        return y
    perMap = (-1,) + (1,) * (rank - 2)
    scale, bias = (g.tensor(f"{path}.{key}", module.vars[key].data.reshape(perMap)) for key in ("scale", "bias"))
    return g.op("Add", [g.op("Mul", [y, scale], path), bias], path)
