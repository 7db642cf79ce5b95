"""Ready-made networks for the command line and examples."""
from .modules.activation import Activation
from .modules.batchnorm2d import BatchNorm2D
from .modules.conv2d import Conv2D
from .modules.flatten import Flatten
from .modules.linear import Linear
from .modules.maxpool2d import MaxPool2D
from .modules.sequential import Sequential


def smallCNN(inshape, classes, maps=(16, 32)):
    """Two Conv3x3-BatchNorm-ReLU-MaxPool2 blocks and a Linear classifier, for (C, H, W) images
    with H and W at least 4 (8x8 digits, 28x28 MNIST, 32x32 CIFAR)."""
    channels, height, width = inshape
    if height < 4 or width < 4:
        raise ValueError(f"smallCNN needs images of at least 4x4, got {height}x{width}")
    seq = Sequential()
    for outmaps in maps:
        seq.extend([Conv2D(channels, outmaps, 3, pad=1), BatchNorm2D(outmaps), Activation("relu"), MaxPool2D(2)])
        channels, height, width = outmaps, height // 2, width // 2
    return seq.extend([Flatten(), Linear(channels * height * width, classes)])


def mlp(insize, classes, hidden=(256, 128)):
    """Flatten, then Linear-ReLU layers of the given widths and a Linear classifier."""
    seq = Sequential(Flatten())
    for width in hidden:
        seq.extend([Linear(insize, width), Activation("relu")])
        insize = width
    return seq.append(Linear(insize, classes))
