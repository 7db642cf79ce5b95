"""The table of ONNX converters: every module class of modules/ to the function that writes its ONNX nodes.

A class is looked up exactly, never through its bases, so a subclass that changes what a module computes is
refused by name instead of exported as its base."""
from .. import modules
from . import onnxactivation, onnxcontainers, onnxlayers, onnxnorm, onnxrnn, onnxshapes

converters = {
    modules.Sequential: onnxcontainers.sequential,
    modules.Graph: onnxcontainers.graph,
    modules.Parallel: onnxcontainers.graph,
    modules.Linear: onnxlayers.linear,
    modules.Embedder: onnxlayers.embedder,
    **{cls: onnxlayers.conv for cls in (modules.Conv1D, modules.Conv2D, modules.Conv3D)},
    **{cls: onnxlayers.deconv for cls in (modules.Deconv1D, modules.Deconv2D, modules.Deconv3D)},
    **{cls: onnxlayers.maxPool for cls in (modules.MaxPool1D, modules.MaxPool2D, modules.MaxPool3D)},
    **{cls: onnxlayers.avgPool for cls in (modules.AvgPool1D, modules.AvgPool2D, modules.AvgPool3D)},
    modules.GlobalAvgPool: onnxlayers.globalAvgPool,
    modules.Upsample2D: onnxlayers.upsample2d,
    **{cls: onnxnorm.batchNorm for cls in (modules.BatchNorm, modules.BatchNorm1D, modules.BatchNorm2D,
                                           modules.BatchNorm3D)},
    modules.LayerNorm: onnxnorm.layerNorm,
    modules.GroupNorm: onnxnorm.groupNorm,
    modules.InstanceNorm2D: onnxnorm.groupNorm,
    modules.Activation: onnxactivation.activation,
    modules.PRelu: onnxactivation.prelu,
    modules.SoftMax: onnxactivation.softmax,
    modules.RNN: onnxrnn.rnn,
    modules.Identity: onnxshapes.passThrough,
    modules.Dropout: onnxshapes.passThrough,
    modules.Dropout2D: onnxshapes.passThrough,
    modules.Flatten: onnxshapes.flatten,
    modules.Reshape: onnxshapes.reshape,
    modules.Transpose: onnxshapes.transpose,
    modules.Pad2D: onnxshapes.pad2d,
    modules.Concat: onnxshapes.concat,
    modules.Split: onnxshapes.split,
    modules.Add: onnxshapes.add,
    modules.Mul: onnxshapes.mul,
}
