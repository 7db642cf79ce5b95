"""Helpers shared by the bad-input tests, as fixtures (test files do not import each other)."""
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed, toHost
from macrobatch.handlers import Trainer
from macrobatch.modules import Activation, Linear, Sequential
from macrobatch.optimizers import Adam


def _blobs(n=200, seed=0):
    """Three Gaussian blobs in 8 dimensions, with integer labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    data = rng.standard_normal((n, 8)).astype(np.float32) + 3 * np.eye(3, 8, dtype=np.float32)[labels]
    return data, labels


def _classifier(batchsize=50, cost=None, optimizer=None, seed=0, **trainerArgs):
    """A small MLP for 8 features and 3 classes, its optimizer set up, and a Trainer on it."""
    setSeed(seed)
    net = Sequential(Linear(8, 16), Activation("relu"), Linear(16, 3))
    optimizer = optimizer or Adam(learnRate=1e-2)
    optimizer.setupOn(net)
    return net, Trainer(net, cost or CrossEntropy(), optimizer, batchsize=batchsize, **trainerArgs)


def _weights(net):
    return {k: toHost(v.data).copy() for k, v in net.getVariables().items()}


def _sameWeights(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture
def blobs():
    return _blobs


@pytest.fixture
def classifier():
    return _classifier


@pytest.fixture
def weights():
    return _weights


@pytest.fixture
def sameWeights():
    return _sameWeights
