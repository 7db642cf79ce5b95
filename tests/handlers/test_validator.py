"""Validator and Calculator: results equal a direct computation, whatever the batch and macrobatch sizes."""
import h5py
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed, toDevice, toHost
from macrobatch.handlers import Calculator, Validator
from macrobatch.modules import Activation, BatchNorm, Dropout, Linear, Sequential


def model():
    setSeed(0)
    return Sequential(Linear(6, 12), BatchNorm(12), Activation("tanh"), Dropout(0.5), Linear(12, 4))


def data(n=257):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 4, n)


def direct(net, x, y):
    """Loss and accuracy computed on the whole set at once, in eval mode."""
    logits = toHost(net.evalMode()(toDevice(x))).astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean(), (logits.argmax(1) == y).mean(), logits


@pytest.mark.parametrize("batchsize,macro", [(1, 1), (16, 50), (64, 10000), (300, 300)])
def test_validator_mean_error_and_accuracy_equal_a_direct_computation(batchsize, macro):
    x, y = data()
    net = model()
    loss, acc, _ = direct(net, x, y)
    net.trainMode()
    validator = Validator(net, CrossEntropy(), batchsize=batchsize)
    error = validator.validateFromHost(x, y, macroBatchSize=macro)
    assert error == pytest.approx(loss, rel=1e-5) and validator.metrics["accuracy"] == pytest.approx(acc)
    assert not any(m.train for _, m in net.namedModules())  # eval mode: dropout off, running stats used
    assert validator.validate(toDevice(x), toDevice(y.astype(np.int32))) == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("batchsize,macro", [(1, 7), (16, 50), (100, 10000)])
def test_calculator_returns_outputs_in_input_order_with_a_short_last_macrobatch(tmp_path, batchsize, macro):
    x, y = data()
    net = model()
    _, _, logits = direct(net, x, y)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"] = x
    with h5py.File(tmp_path / "d.h5", "r") as f:
        out = Calculator(net, batchsize=batchsize).calcFromHost(f["data"], macroBatchSize=macro)
    assert isinstance(out, np.ndarray) and out.shape == (257, 4)
    np.testing.assert_allclose(out, logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Calculator(net, batchsize=batchsize).calc(toDevice(x)), logits, rtol=1e-5, atol=1e-6)


def test_inference_handlers_keep_no_activations():
    """Calculator and Validator run their forward passes under withoutActivations: afterwards no layer holds its
    input or output (a training forward still does)."""
    net = Sequential(Linear(5, 8), Activation("relu"), Linear(8, 3))
    x = np.random.default_rng(0).standard_normal((20, 5)).astype(np.float32)
    y = np.arange(20) % 3
    Calculator(net, batchsize=8).calc(toDevice(x))
    assert all(m.inData is None and m.data is None for m in net.modules)
    Validator(net, CrossEntropy(), batchsize=8).validate(toDevice(x), toDevice(y))
    assert all(m.inData is None and m.data is None for m in net.modules)
    net(toDevice(x))
    assert all(m.inData is not None for m in net.modules)
