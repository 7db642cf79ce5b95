"""ONNX converters of the layers with weights or windows: Linear, Embedder, ConvND and DeconvND, max and average
pooling, GlobalAvgPool and Upsample2D."""
import numpy

from .onnxgraph import inputShape, refuse


def linear(g, module, x, path):
    """Gemm: x (batch, insize) @ W (insize, outsize) + b, W as macrobatch stores it."""
    inputs = [x, g.tensor(f"{path}.W", module.vars["W"].data)]
    if "b" in module.vars:
        inputs.append(g.tensor(f"{path}.b", module.vars["b"].data))
    return g.op("Gemm", inputs, path)


def embedder(g, module, x, path):
    """Gather of the table's rows (the padding row is a row like any other at inference)."""
    return g.op("Gather", [g.tensor(f"{path}.W", module.vars["W"].data), x], path, axis=0)


def _convInputs(g, module, x, path):
    inputs = [x, g.tensor(f"{path}.W", module.vars["W"].data)]
    if "b" in module.vars:
        inputs.append(g.tensor(f"{path}.b", module.vars["b"].data))
    return inputs


def conv(g, module, x, path):
    """Conv: W (outmaps, inmaps/groups, *size) is ONNX's layout; pad on both sides of each axis."""
    return g.op("Conv", _convInputs(g, module, x, path), path, kernel_shape=module.size, strides=module.stride,
                pads=module.pad * 2, dilations=module.dilation, group=module.groups)


def deconv(g, module, x, path):
    """ConvTranspose: W (inmaps, outmaps/groups, *size) is ONNX's layout; outPad is its output_padding."""
    return g.op("ConvTranspose", _convInputs(g, module, x, path), path, kernel_shape=module.size,
                strides=module.stride, pads=module.pad * 2, dilations=module.dilation, group=module.groups,
                output_padding=module.outPad)


def _emptyWindowAxis(module, insize):
    """The first spatial axis on which some window has no tap inside the input (all its taps in the padding
    or beyond, which dilation allows), or None."""
    for axis, n in enumerate(insize):
        k, s, p, d = module.size[axis], module.stride[axis], module.pad[axis], module.dilation[axis]
        starts = numpy.arange(module.outLength(n, axis)) * s - p
        taps = starts[:, None] + d * numpy.arange(k)
        if not ((taps >= 0) & (taps < n)).any(axis=1).all():
            return axis
    return None


def maxPool(g, module, x, path):
    """MaxPool; ONNX Runtime follows torch's ceil-mode rule (no last window starting in the right padding).
    A window with no tap in the input, which dilation allows, is -inf here and not in ONNX Runtime: refused."""
    axis = _emptyWindowAxis(module, inputShape(module)[2:])
    if axis is not None:
        refuse(module, path, f"on inputs of shape {inputShape(module)[1:]} per sample, a window of spatial axis "
                             f"{axis} holds only padding (size {module.size}, dilation {module.dilation}, pad "
                             f"{module.pad}); macrobatch gives -inf there, ONNX Runtime does not")
    return g.op("MaxPool", [x], path, kernel_shape=module.size, strides=module.stride, pads=module.pad * 2,
                dilations=module.dilation, ceil_mode=int(module.ceilMode))


def avgPool(g, module, x, path):
    """AveragePool, with torch's divisors in ceil mode and for countIncludePad, as ONNX Runtime has them."""
    return g.op("AveragePool", [x], path, kernel_shape=module.size, strides=module.stride, pads=module.pad * 2,
                ceil_mode=int(module.ceilMode), count_include_pad=int(module.countIncludePad))


def globalAvgPool(g, module, x, path):
    """GlobalAveragePool keeps the spatial axes as ones: flattened to (batch, maps)."""
    return g.op("Flatten", [g.op("GlobalAveragePool", [x], path)], path, axis=1)


def upsample2d(g, module, x, path):
    """Resize by the integer scales: nearest copies pixel floor(i / scale); bilinear is torch's
    align_corners=False (half-pixel centres, clamped to the edge)."""
    scales = g.tensor(f"{path}.scales", [1.0, 1.0, *module.scale])
    if module.mode == "nearest":
        return g.op("Resize", [x, "", scales], path, mode="nearest", coordinate_transformation_mode="asymmetric",
                    nearest_mode="floor")
    return g.op("Resize", [x, "", scales], path, mode="linear", coordinate_transformation_mode="half_pixel")
