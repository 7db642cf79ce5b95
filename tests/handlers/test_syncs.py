"""Host synchronisations on the GPU path: none per batch, a bounded few per macrobatch and per call.

Each walk is run twice with everything equal but the number of batches (or of macrobatches), and the
host synchronisations of the two runs are compared: equal counts mean none per batch. They are counted
by the ``hostWaits`` fixture: the CPU stand-in's count of host reads of device data (``float()``,
``.get()``, ``.item()``, ...) and of stream, event or device synchronisations, plus boolean-mask indexing
(which real CuPy resolves with a read). Real CuPy has no such counter: there these tests skip, saying so.
"""
import io

import numpy as np
import pytest

from macrobatch.costs import MSE, CrossEntropy
from macrobatch.costs.multi import Multi
from macrobatch.engine import setSeed, toDevice
from macrobatch.handlers import Calculator, Trainer, Validator
from macrobatch.handlers.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint, ProgressBar, progressbar
from macrobatch.handlers.fit import Fit
from macrobatch.modules import Activation, Embedder, Flatten, Graph, Linear, Node, Sequential
from macrobatch.optimizers import Adam

pytestmark = pytest.mark.cuda

PER_MACROBATCH = 3  # the most host synchronisations one macrobatch may cost


@pytest.fixture
def syncs(hostWaits):
    """syncs(run): the host synchronisations made while run() ran."""
    def counted(run):
        before = hostWaits()
        run()
        return hostWaits() - before
    return counted


def model(kind):
    setSeed(0)
    if kind == "embedder":
        return Sequential(Embedder(20, 4), Flatten(), Linear(4 * 5, 3))
    if kind == "multi":  # a classification and a regression head
        x = Node()
        hidden = Node(Activation("relu"), Node(Linear(5, 16), x))
        return Graph(x, [Node(Linear(16, 3), hidden), Node(Linear(16, 2), hidden)])
    return Sequential(Linear(5, 16), Activation("relu"), Linear(16, 3))


def dataset(kind, n):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    if kind == "ignore":
        labels[::7] = -100
    data = rng.integers(0, 20, (n, 5)) if kind == "embedder" else rng.standard_normal((n, 5)).astype(np.float32)
    if kind == "multi":
        return data, [labels, rng.standard_normal((n, 2)).astype(np.float32)]
    return data, labels


def cost(kind):
    if kind == "multi":
        return Multi(CrossEntropy(), MSE())
    return CrossEntropy(ignoreIndex=-100) if kind == "ignore" else CrossEntropy()


def walk(call, kind, n, batchsize, macroBatchSize):
    """A function that runs one handler call of the kind asked on n samples (after a first, uncounted call
    that compiles the kernels and allocates the buffers)."""
    net = model(kind)
    data, labels = dataset(kind, n)
    if call in ("train", "trainFromHost"):
        optimizer = Adam()
        optimizer.setupOn(net, precision="float16" if kind == "float16" else "float32")  # float16: loss scaling
        handler = Trainer(net, cost(kind), optimizer, batchsize=batchsize)
    elif call == "validateFromHost":
        handler = Validator(net, cost(kind), batchsize=batchsize)
    else:
        handler = Calculator(net, batchsize=batchsize)
    if call == "train":
        data = toDevice(data)
        labels = [toDevice(t) for t in labels] if isinstance(labels, list) else toDevice(labels)
        method = lambda: handler.train(data, labels)  # noqa: E731
    elif call == "calcFromHost":
        method = lambda: handler.calcFromHost(data, macroBatchSize)  # noqa: E731
    else:
        method = lambda: getattr(handler, call)(data, labels, macroBatchSize)  # noqa: E731
    method()
    return method


CASES = [(call, kind) for call in ("train", "trainFromHost", "validateFromHost", "calcFromHost")
         for kind in ("plain", "ignore", "embedder", "multi")] + [
    (call, "float16") for call in ("train", "trainFromHost")]


@pytest.mark.parametrize("call,kind", CASES)
def test_no_host_synchronisation_per_batch(call, kind, syncs):
    few = syncs(walk(call, kind, n=240, batchsize=60, macroBatchSize=120))
    many = syncs(walk(call, kind, n=240, batchsize=10, macroBatchSize=120))
    assert many == few, f"{many - few} more host synchronisations for 20 more batches"


@pytest.mark.parametrize("call,kind", [case for case in CASES if case[0] != "train"])
def test_host_synchronisations_per_macrobatch_are_few(call, kind, syncs):
    two = syncs(walk(call, kind, n=240, batchsize=30, macroBatchSize=120))
    six = syncs(walk(call, kind, n=720, batchsize=30, macroBatchSize=120))
    assert 0 <= six - two <= 4 * PER_MACROBATCH, f"{(six - two) / 4} host synchronisations per macrobatch"


def fitRun(tmp_path, n, batchsize, kind):
    net = model(kind)
    optimizer = Adam()
    optimizer.setupOn(net)
    data, labels = dataset(kind, n)
    valLabels = [t[:60] for t in labels] if kind == "multi" else labels[:60]
    callbacks = [ProgressBar(bar=True, file=io.StringIO()), CSVLogger(tmp_path / "log.csv"), EarlyStopping("val_loss"),
                 ModelCheckpoint(tmp_path / "ckpt", monitor="val_loss")]
    fit = Fit(net, cost(kind), optimizer, batchsize=batchsize, macroBatchSize=120, callbacks=callbacks, seed=0)
    return lambda: fit.run(data, labels, epochs=fit.epoch + 1, valData=data[:60], valTarget=valLabels)


@pytest.mark.parametrize("kind", ["plain", "multi"])
def test_fit_with_the_command_lines_callbacks_makes_no_host_synchronisation_per_batch(tmp_path, monkeypatch, syncs,
                                                                                      kind):
    monkeypatch.setattr(progressbar.time, "perf_counter", lambda: 0.0)  # the bar's timed loss reads never fall due
    few, many = fitRun(tmp_path / "few", 240, 60, kind), fitRun(tmp_path / "many", 240, 10, kind)
    few(), many()
    assert syncs(many) == syncs(few)
