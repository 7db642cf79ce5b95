"""Ready-made networks for the command line and examples."""
import math

from .modules.activation import Activation
from .modules.batchnorm2d import BatchNorm2D
from .modules.conv2d import Conv2D
from .modules.flatten import Flatten
from .modules.graph import Graph
from .modules.linear import Linear
from .modules.maxpool2d import MaxPool2D
from .modules.node import Node
from .modules.reshape import Reshape
from .modules.sequential import Sequential

headKinds = ("classes", "values")  # a head's name is KIND:TARGET (multiHead), which predict reads back


def cnnTrunk(inshape, maps=(16, 32)):
    """Two Conv3x3-BatchNorm-ReLU-MaxPool2 blocks and a Flatten, for (C, H, W) images with H and W at
    least 4 (8x8 digits, 28x28 MNIST, 32x32 CIFAR). Returns (trunk, features per sample)."""
    channels, height, width = inshape
    if height < 4 or width < 4:
        raise ValueError(f"smallCNN needs images of at least 4x4, got {height}x{width}")
    seq = Sequential()
    for outmaps in maps:
        seq.extend([Conv2D(channels, outmaps, 3, pad=1), BatchNorm2D(outmaps), Activation("relu"), MaxPool2D(2)])
        channels, height, width = outmaps, height // 2, width // 2
    return seq.append(Flatten()), channels * height * width


def mlpTrunk(insize, hidden=(256, 128)):
    """Flatten, then Linear-ReLU layers of the given widths. Returns (trunk, features per sample)."""
    seq = Sequential(Flatten())
    for width in hidden:
        seq.extend([Linear(insize, width), Activation("relu")])
        insize = width
    return seq, insize


def smallCNN(inshape, classes, maps=(16, 32)):
    """cnnTrunk and a Linear classifier."""
    trunk, features = cnnTrunk(inshape, maps)
    return trunk.append(Linear(features, classes))


def mlp(insize, classes, hidden=(256, 128)):
    """mlpTrunk and a Linear classifier."""
    trunk, features = mlpTrunk(insize, hidden)
    return trunk.append(Linear(features, classes))


def multiHead(trunk, features, heads):
    """A Graph of trunk (giving `features` values per sample) and one head per target on it, returning the
    heads' outputs in order. heads: (target name, classes, shape) each: a Linear classifier of `classes`
    scores, or, where classes is None, a Linear regression of per-sample shape `shape` (() for one value).
    The heads are named 'classes:TARGET' and 'values:TARGET', so that the saved model says what each
    output is (outputHeads)."""
    x = Node()
    shared = Node(trunk, x)
    outputs = []
    for target, classes, shape in heads:
        head = (Linear(features, classes, name=f"classes:{target}") if classes else
                Sequential(Linear(features, math.prod(shape)), Reshape(shape), name=f"values:{target}"))
        outputs.append(Node(head, shared))
    return Graph(x, outputs)


def outputHeads(model):
    """[(kind, target)] for each output of a model with several outputs: 'classes' or 'values' and the
    target's name for a multiHead one, ('values', None) for an output named otherwise; None for a model
    of one output."""
    if not isinstance(model, Graph) or not model.listOutput:
        return None
    named = [(node.module.name or "").partition(":") for node, _ in model.outputs]
    return [(kind, target) if sep and kind in headKinds else ("values", None) for kind, sep, target in named]
