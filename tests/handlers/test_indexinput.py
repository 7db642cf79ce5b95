"""Index input: a network whose first layer is an Embedder gets its data as integers, not floats."""
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed, toDevice, toHost
from macrobatch.engine.errors import DtypeError, LabelError
from macrobatch.handlers import Trainer
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


def test_an_index_beyond_the_vocabulary_in_a_later_macrobatch_stops_before_it_trains_naming_it():
    x, y = tokens()
    x[200, 3] = 10
    net, optimizer = model()
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=32)
    finished = []
    with pytest.raises(LabelError, match=r"index 10 at position \(200, 3\) is out of range for a vocabulary of 10"):
        trainer.trainFromHost(x, y, macroBatchSize=128, random=False,
                              onMacroBatchFinish=lambda t: finished.append(t.currMacroBatch))
    assert finished == [0] and trainer.currBatch == 4  # macrobatch 0 trained, not one batch of macrobatch 1


def test_a_negative_index_in_device_data_is_refused_once_per_call_before_any_update():
    x, y = tokens()
    x[37, 0] = -1
    net, optimizer = model()
    before = {k: toHost(v.data).copy() for k, v in net.getVariables().items()}
    with pytest.raises(LabelError, match=r"index -1 at position \(37, 0\)"):
        Trainer(net, CrossEntropy(), optimizer, batchsize=32).train(toDevice(x, np.int32), toDevice(y))
    assert all(np.array_equal(toHost(v.data), before[k]) for k, v in net.getVariables().items())
