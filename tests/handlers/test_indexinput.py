"""Index input: a network whose first layer is an Embedder gets its data as integers, not floats."""
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed
from macrobatch.engine.errors import DtypeError
from macrobatch.handlers.fit import Fit, predict
from macrobatch.modules import Linear, Sequential
from macrobatch.modules.embedder import Embedder
from macrobatch.modules.rnn import RNN
from macrobatch.optimizers import Adam


def tokens(n=256, time=6, seed=0):
    """Sequences of tokens 0..9; the class is whether token 7 appears."""
    x = np.random.default_rng(seed).integers(0, 10, (n, time))
    return x, (x == 7).any(axis=1).astype(np.int64)


def model():
    setSeed(0)
    net = Sequential(Embedder(10, 8), RNN(8, 16, mode="gru"), Linear(16, 2))
    optimizer = Adam(learnRate=0.01)
    optimizer.setupOn(net)
    return net, optimizer


def test_an_embedder_first_network_trains_on_integer_tokens_through_fit():
    x, y = tokens()
    net, optimizer = model()
    fit = Fit(net, CrossEntropy(), optimizer, batchsize=32, macroBatchSize=128, seed=0)
    history = fit.run(x, y, epochs=6)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert predict(net, x[:5]).shape == (5, 2)


def test_float_data_for_an_embedder_first_network_is_refused():
    x, y = tokens()
    net, optimizer = model()
    fit = Fit(net, CrossEntropy(), optimizer, batchsize=32)
    with pytest.raises(DtypeError, match="data: dtype float32 cannot be used as int32 input; give integer indices"):
        fit.run(x.astype(np.float32), y, epochs=1)
