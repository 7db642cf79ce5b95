"""A small ResNet on the bundled 8x8 digits, its residual blocks built with Graph and Add.

Run it with ``python examples/resnet.py`` (about 20 s on two cores); it prints the loss of the first
and the last epoch and the validation accuracy, then saves the model and rebuilds it from the file.
"""
import sys
import tempfile
from pathlib import Path

import h5py

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed
from macrobatch.handlers.fit import Fit
from macrobatch.modules import Activation, BatchNorm2D, Conv2D, Flatten, Linear, MaxPool2D, Sequential, loadModel
from macrobatch.modules.add import Add
from macrobatch.modules.graph import Graph
from macrobatch.modules.node import Node
from macrobatch.datasets import digitsH5
from macrobatch.optimizers import Adam


def basicBlock(maps, name=None):
    """ResNet's basic block: relu(bn(conv(relu(bn(conv(x))))) + x), 3x3 convolutions keeping the maps and size."""
    x = Node()
    h = x
    for i in range(2):
        h = Node(Conv2D(maps, maps, 3, pad=1, useBias=False), h)
        h = Node(BatchNorm2D(maps), h)
        if i == 0:
            h = Node(Activation("relu"), h)
    y = Node(Activation("relu"), Node(Add(), [h, x]))
    return Graph(x, y, name=name)


def smallResNet(maps=16, classes=10):
    """Stem convolution, a residual block at 8x8, 2x2 pooling, a residual block at 4x4, a linear classifier."""
    return Sequential(Conv2D(1, maps, 3, pad=1, useBias=False), BatchNorm2D(maps), Activation("relu"),
                      basicBlock(maps, "block1"), MaxPool2D(2), basicBlock(maps, "block2"),
                      Flatten(), Linear(maps * 4 * 4, classes))


def main(epochs=8):
    setSeed(0)
    net = smallResNet()
    optimizer = Adam(learnRate=3e-3)
    optimizer.setupOn(net)
    fit = Fit(net, CrossEntropy(), optimizer, batchsize=64, seed=0)
    with h5py.File(digitsH5(), "r") as f:
        history = fit.run(f["data"], f["labels"], epochs, valData=f["val_data"], valTarget=f["val_labels"])
    print(f"epoch 1 loss {history['loss'][0]:.4f}, epoch {epochs} loss {history['loss'][-1]:.4f}, "
          f"val accuracy {history['val_accuracy'][-1]:.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        net.save(Path(tmp) / "resnet.h5", inputShape=(1, 8, 8))
        print("rebuilt from the file:", [type(m).__name__ for m in loadModel(Path(tmp) / "resnet.h5")])
    return history


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:2]))
