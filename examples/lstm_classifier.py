"""An LSTM sequence classifier: which of three frequencies a noisy, randomly shifted sine wave has.

Run it with ``python examples/lstm_classifier.py [epochs]`` (a few seconds on two cores); it prints the
loss of the first and the last epoch and the validation accuracy, then saves the model and rebuilds
it from the file.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed
from macrobatch.handlers.fit import Fit
from macrobatch.modules import Linear, Sequential, loadModel
from macrobatch.modules.rnn import RNN
from macrobatch.optimizers import Adam


def waves(n, time=24, seed=0):
    """n sequences (n, time, 1) of sin(2 pi k t / time + phase) plus noise, labelled k - 1 for k in 1, 2, 3
    cycles: telling them apart means following the wave over many steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    t = np.arange(time) / time
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    data = np.sin(2 * np.pi * (labels[:, None] + 1) * t + phase) + 0.3 * rng.standard_normal((n, time))
    return data[..., None].astype(np.float32), labels


def main(epochs=6):
    setSeed(0)
    net = Sequential(RNN(1, 16, mode="lstm"), Linear(16, 3))
    optimizer = Adam(learnRate=1e-2)
    optimizer.setupOn(net)
    fit = Fit(net, CrossEntropy(), optimizer, batchsize=32, seed=0)
    (data, labels), (valData, valLabels) = waves(2000, seed=1), waves(400, seed=2)
    history = fit.run(data, labels, epochs, valData=valData, valTarget=valLabels)
    print(f"epoch 1 loss {history['loss'][0]:.4f}, epoch {epochs} loss {history['loss'][-1]:.4f}, "
          f"val accuracy {history['val_accuracy'][-1]:.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        net.save(Path(tmp) / "lstm.h5", inputShape=data.shape[1:])
        print("rebuilt from the file:", [type(m).__name__ for m in loadModel(Path(tmp) / "lstm.h5")])
    return history


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:2]))
