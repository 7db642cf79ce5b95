"""A small 1D convolutional network that tells noisy sine waves apart by their frequency.

Each sample is a length-64 sequence sin(2*pi*f*t + phase) plus Gaussian noise, with f one of four
frequencies (the class) and a random phase, so no single time step gives the class away: the
convolutions have to pick up the oscillation. Trained with Fit; prints the loss of every epoch.
Run: python examples/conv1d.py (about 10 s on 2 cores).
"""
import numpy as np

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed
from macrobatch.handlers.fit import Fit
from macrobatch.modules import Activation, Flatten, Linear, Sequential
from macrobatch.modules.conv1d import Conv1D
from macrobatch.optimizers import Adam

frequencies = (2, 3, 5, 8)  # periods per sequence, one class each
length = 64


def noisySines(count, rng, noise=0.5):
    """count sequences (count, 1, length) float32 and their int32 class labels."""
    labels = rng.integers(len(frequencies), size=count).astype(np.int32)
    t = np.arange(length) / length
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1))
    waves = np.sin(2 * np.pi * np.take(frequencies, labels)[:, None] * t + phase)
    waves += noise * rng.standard_normal(waves.shape)
    return waves[:, None, :].astype(np.float32), labels


def main(epochs=8):
    setSeed(0)
    rng = np.random.default_rng(0)
    x, y = noisySines(3000, rng)
    valX, valY = noisySines(500, rng)
    net = Sequential(
        Conv1D(1, 8, 7, pad=3), Activation("relu"),
        Conv1D(8, 16, 5, stride=2, pad=4, dilation=2), Activation("relu"),   # length 32, wider view
        Conv1D(16, 16, 3, stride=2, pad=1, groups=16), Activation("relu"),  # depthwise, length 16
        Flatten(), Linear(16 * 16, len(frequencies)))
    optimizer = Adam(learnRate=3e-3)
    optimizer.setupOn(net)
    history = Fit(net, CrossEntropy(), optimizer, batchsize=64, seed=0).run(x, y, epochs, valData=valX,
                                                                           valTarget=valY)
    for epoch, loss, acc in zip(history["epoch"], history["loss"], history["val_accuracy"]):
        print(f"epoch {epoch}: loss {loss:.4f}, validation accuracy {acc:.3f}")
    print(f"loss went from {history['loss'][0]:.4f} to {history['loss'][-1]:.4f}")
    return history


if __name__ == "__main__":
    main()
