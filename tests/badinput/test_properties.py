"""Properties over random shapes, batch and macrobatch sizes (hypothesis, derandomized so runs repeat)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from macrobatch.costs import MSE
from macrobatch.engine import setSeed, toDevice, toHost
from macrobatch.handlers import Calculator, Validator
from macrobatch.modules import Linear

sizes = st.integers(1, 300).flatmap(lambda n: st.tuples(
    st.just(n), st.integers(1, 64), st.integers(0, 200), st.integers(1, 9), st.integers(1, 5)))


def walk(n, batchsize, extra, insize, outsize):
    setSeed(n)
    rng = np.random.default_rng(n)
    data = rng.standard_normal((n, insize)).astype(np.float32)
    target = rng.standard_normal((n, outsize)).astype(np.float32)
    net = Linear(insize, outsize)
    return net, data, target, batchsize + extra


def forward64(net, data):
    """The Linear layer's outputs computed directly in float64, sample by sample in input order."""
    return data.astype(np.float64) @ toHost(net.vars["W"].data).astype(np.float64) + toHost(net.vars["b"].data)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(sizes)
def test_property_validator_mean_error_equals_the_direct_mean_over_all_samples(params):
    net, data, target, macro = walk(*params)
    direct = ((forward64(net, data) - target) ** 2).mean()  # MSE: the mean over samples and outputs
    validator = Validator(net, MSE(), batchsize=params[1])
    assert validator.validateFromHost(data, target, macroBatchSize=macro) == pytest.approx(direct, rel=1e-4, abs=1e-6)
    assert validator.validate(toDevice(data), toDevice(target)) == pytest.approx(direct, rel=1e-4, abs=1e-6)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(sizes)
def test_property_calculator_outputs_come_back_in_input_order(params):
    net, data, _, macro = walk(*params)
    calc = Calculator(net, batchsize=params[1])
    expected = forward64(net, data)
    np.testing.assert_allclose(calc.calcFromHost(data, macroBatchSize=macro), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(calc.calc(toDevice(data)), expected, rtol=1e-4, atol=1e-5)
