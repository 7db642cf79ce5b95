"""The RDP accountant against the definition (the Rényi divergence of the sampled Gaussian mixture,
integrated numerically here, independently of the series) and against published values of Opacus and
TF Privacy (Opacus itself: tests/privacy/test_opacus.py). The accountant is host float64 arithmetic with no
device arrays, so each test means the same on both backends."""
import math

import h5py
import numpy as np
import pytest

from macrobatch.engine.errors import ModelFileError
from macrobatch.engine.serialize import readState, writeState
from macrobatch.privacy.accountant import (ORDERS, RdpAccountant, epsilon, epsilonFromRdp,
                                           noiseMultiplierFor)
from macrobatch.privacy.sampledgaussian import logErfc, sampledGaussianRdp


def integratedRdp(q, sigma, alpha):
    """The RDP by its definition, D_alpha(mixture || N(0, sigma^2)): log of the integral of N(z; 0, sigma^2) ((1-q) + q
    exp((2z - 1) / (2 sigma^2)))^alpha over a fine grid (trapezoid, exact to rounding for a smooth
    integrand that vanishes at both ends), summed in log space, over (alpha - 1)."""
    step = min(sigma, sigma ** 2) / 40.0
    # Whole multiples of the step: np.arange(lo, hi, step)'s points drift from lo + k step by far more than
    # rounding and bias the sum by ~1e-13.
    z = step * np.arange(math.floor((-40.0 * sigma - 1.0) / step), math.ceil((alpha + 40.0 * sigma + 1.0) / step))
    with np.errstate(divide="ignore"):
        logMixture = np.logaddexp(np.log1p(-q), math.log(q) + (2.0 * z - 1.0) / (2.0 * sigma ** 2))
    logIntegrand = -z * z / (2.0 * sigma ** 2) - math.log(sigma * math.sqrt(2.0 * math.pi)) + alpha * logMixture
    top = logIntegrand.max()
    return (top + math.log(np.exp(logIntegrand - top).sum() * step)) / (alpha - 1.0)


RATES = [0.001, 0.01, 0.1, 0.5, 0.99]
NOISES = [0.7, 1.0, 2.0, 4.0]


@pytest.mark.parametrize("orders", [[2, 3, 5, 12, 32, 63], [1.1, 1.5, 2.7, 4.25, 7.3, 10.9]],
                         ids=["integer", "fractional"])
@pytest.mark.parametrize("q", RATES)
@pytest.mark.parametrize("sigma", NOISES)
def test_rdp_equals_the_integrated_renyi_divergence(orders, q, sigma):
    """Integer orders take the binomial sum, fractional ones the two Gaussian-tail series."""
    expected = [integratedRdp(q, sigma, alpha) for alpha in orders]
    np.testing.assert_allclose(sampledGaussianRdp(q, sigma, orders), expected, rtol=1e-6)


def test_log_erfc_tail_series_equals_erfc_where_both_hold():
    """Past x = 25 the fractional series takes log(erfc(x)) from its asymptotic series (erfc underflows
    past 26.5); up to 26.5 it must equal the logarithm of math.erfc."""
    x = np.linspace(25.001, 26.4, 50)
    np.testing.assert_allclose(logErfc(x), [math.log(math.erfc(v)) for v in x.tolist()], rtol=1e-14)
    assert np.all(np.isfinite(logErfc(np.array([30.0, 1e3, 1e6]))))


@pytest.mark.parametrize("sigma", NOISES)
def test_full_batch_is_the_gaussian_mechanisms_rdp(sigma):
    orders = np.array(ORDERS)
    np.testing.assert_allclose(sampledGaussianRdp(1.0, sigma, orders), orders / (2 * sigma ** 2), rtol=1e-15)
    np.testing.assert_allclose([integratedRdp(1.0, sigma, alpha) for alpha in (1.5, 2, 7.3, 63)],
                               [alpha / (2 * sigma ** 2) for alpha in (1.5, 2, 7.3, 63)], rtol=1e-9)
    np.testing.assert_allclose(sampledGaussianRdp(1 - 1e-12, sigma, orders), orders / (2 * sigma ** 2), rtol=1e-6)


def test_empty_sampling_releases_nothing():
    assert not np.any(sampledGaussianRdp(0.0, 1.0, ORDERS))
    assert epsilon(1000, 0.0, 1.0, 1e-5) == 0.0
    assert RdpAccountant().epsilon(1e-5) == 0.0


def test_epsilon_grows_with_steps_and_falls_with_noise():
    bySteps = [epsilon(steps, 0.01, 1.0, 1e-5) for steps in (1, 10, 100, 1000, 10000)]
    byNoise = [epsilon(1000, 0.01, sigma, 1e-5) for sigma in (0.5, 0.8, 1.0, 2.0, 5.0)]
    assert np.all(np.diff(bySteps) > 0) and np.all(np.diff(byNoise) < 0)


def test_epsilon_equals_opacus_published_values():
    # opacus/tests/accountants_test.py, test_rdp_accountant (Opacus 1.4 .. 1.6, default alphas).
    assert epsilon(int(90 / 0.04), 0.04, 1.5, 1e-5) == pytest.approx(7.32911117143, abs=1e-9)
    # The doctest of opacus/accountants/analysis/rdp.py: two settings composed, orders 2 .. 32.
    orders = list(range(2, 33))
    rdp = 10 * sampledGaussianRdp(1e-5, 1.0, orders) + 4 * sampledGaussianRdp(1e-4, 3.0, orders)
    eps, order = epsilonFromRdp(rdp, orders, 1e-5)
    assert (round(eps, 3), order) == (0.336, 23)


@pytest.mark.parametrize("sigma, epochs, published", [(1.12, 60, 2.92), (1.2, 10, 1.20)])
def test_rdp_reproduces_tf_privacy_mnist_table(sigma, epochs, published):
    """TF Privacy tutorials/README.md, "Select Parameters" (MNIST, batch 256 of 60000, delta 1e-5):
    epsilon there comes from the classic conversion min(rdp - log(delta) / (order - 1)) (Mironov 2017,
    Proposition 3); the improved one of the accountant is smaller."""
    q, steps, orders = 256 / 60000, epochs * 60000 // 256, np.array(ORDERS)
    rdp = steps * sampledGaussianRdp(q, sigma, orders)
    classic = np.min(rdp - math.log(1e-5) / (orders - 1))
    assert classic == pytest.approx(published, abs=0.005)
    assert epsilon(steps, q, sigma, 1e-5) < classic


def test_noise_multiplier_equals_opacus_published_values():
    # opacus/tests/accountants_test.py, test_get_noise_multiplier_rdp_epochs and _steps.
    assert noiseMultiplierFor(8, int(90 / 0.04), 0.04, 1e-5) == pytest.approx(1.416, abs=1e-4)
    assert noiseMultiplierFor(8, 2000, 0.04, 1e-5) == pytest.approx(1.3562, abs=1e-4)


@pytest.mark.parametrize("target, steps, q, delta", [(1.0, 1000, 0.01, 1e-5), (3.0, 14062, 256 / 60000, 1e-5),
                                                     (8.0, 100, 0.5, 1e-6), (0.5, 50, 0.001, 1e-3)])
def test_noise_multiplier_inverts_epsilon(target, steps, q, delta):
    sigma = noiseMultiplierFor(target, steps, q, delta)
    assert target - 0.01 <= epsilon(steps, q, sigma, delta) <= target
    fine = noiseMultiplierFor(target, steps, q, delta, tolerance=1e-7)
    assert epsilon(steps, q, fine, delta) == pytest.approx(target, abs=1e-7)


def test_unreachable_epsilon_is_refused_with_what_is_reachable():
    with pytest.raises(ValueError, match="out of reach.*gives epsilon"):
        noiseMultiplierFor(0.05, 1000, 0.01, 1e-5)


def test_accountant_sums_steps_of_varying_noise_and_rate():
    accountant = RdpAccountant()
    accountant.step(1.0, 0.01, count=300)
    accountant.step(1.0, 0.05)
    accountant.step(2.0, 0.05)
    accountant.step(2.0, 0.05, count=98)
    accountant.step(1.0, 0.01, count=0)
    rdp = (300 * sampledGaussianRdp(0.01, 1.0, ORDERS) + sampledGaussianRdp(0.05, 1.0, ORDERS)
           + 99 * sampledGaussianRdp(0.05, 2.0, ORDERS))
    np.testing.assert_allclose(accountant.rdp, rdp, rtol=1e-13)
    assert accountant.steps == 400
    assert accountant.epsilon(1e-5) == pytest.approx(epsilonFromRdp(rdp, ORDERS, 1e-5)[0], rel=1e-13)
    assert epsilon(300, 0.01, 1.0, 1e-5) < accountant.epsilon(1e-5)


def test_state_round_trip_through_a_checkpoint_resumes_exactly(tmp_path):
    settings = [(1.0, 0.01)] * 40 + [(1.3, 0.02)] * 30 + [(1.0, 0.01)] * 30
    whole, first = RdpAccountant(), RdpAccountant()
    for sigma, q in settings:
        whole.step(sigma, q)
    for sigma, q in settings[:55]:
        first.step(sigma, q)
    with h5py.File(tmp_path / "state.h5", "w") as f:
        writeState(f.create_group("accountant"), first.getState())
    resumed = RdpAccountant()
    with h5py.File(tmp_path / "state.h5", "r") as f:
        resumed.setState(readState(f["accountant"]))
    for sigma, q in settings[55:]:
        resumed.step(sigma, q)
    assert np.array_equal(resumed.rdp, whole.rdp) and resumed.steps == whole.steps == 100
    assert resumed.epsilon(1e-5) == whole.epsilon(1e-5)


def test_set_state_refuses_other_orders_and_changes_nothing():
    saved = RdpAccountant(orders=[2, 4, 8])
    saved.step(1.0, 0.1, count=10)
    accountant = RdpAccountant()
    accountant.step(1.0, 0.1, count=5)
    before = accountant.rdp.copy()
    with pytest.raises(ModelFileError, match="other orders"):
        accountant.setState(saved.getState())
    assert np.array_equal(accountant.rdp, before) and accountant.steps == 5


@pytest.mark.parametrize("call, argument", [
    (lambda a: a.step(1.0, -0.1), "sampleRate"), (lambda a: a.step(1.0, 1.5), "sampleRate"),
    (lambda a: a.step(1.0, math.nan), "sampleRate"), (lambda a: a.step(0.0, 0.1), "noiseMultiplier"),
    (lambda a: a.step(-1.0, 0.1), "noiseMultiplier"), (lambda a: a.step(math.inf, 0.1), "noiseMultiplier"),
    (lambda a: a.step(1.0, 0.1, count=-1), "count"), (lambda a: a.step(1.0, 0.1, count=1.5), "count"),
    (lambda a: a.step(1.0, 0.1, count=True), "count"), (lambda a: a.epsilon(0.0), "delta"),
    (lambda a: a.epsilon(1.0), "delta"), (lambda a: RdpAccountant(orders=[1.0, 2.0]), "orders"),
    (lambda a: RdpAccountant(orders=[]), "orders"), (lambda a: epsilon(-1, 0.1, 1.0, 1e-5), "steps"),
    (lambda a: noiseMultiplierFor(0.0, 100, 0.1, 1e-5), "targetEpsilon"),
    (lambda a: noiseMultiplierFor(1.0, 0, 0.1, 1e-5), "steps"),
    (lambda a: noiseMultiplierFor(1.0, 100, 0.0, 1e-5), "sampleRate"),
    (lambda a: noiseMultiplierFor(1.0, 100, 0.1, 1e-5, tolerance=0.0), "tolerance"),
    (lambda a: noiseMultiplierFor(1.0, 100, 0.1, 2.0), "delta")])
def test_invalid_arguments_are_refused_naming_them_before_any_change(call, argument):
    accountant = RdpAccountant()
    accountant.step(1.0, 0.1, count=3)
    before = accountant.getState()
    with pytest.raises(ValueError, match=argument):
        call(accountant)
    assert np.array_equal(accountant.rdp, before["rdp"]) and accountant.steps == before["steps"]
