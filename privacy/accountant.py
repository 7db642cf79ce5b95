"""The RDP accountant of DP-SGD (Mironov 2017): Rényi DP adds up over steps order by order, and the
sum converts to an (epsilon, delta) guarantee at the best order, with the conversion of Balle et al.
2020 (Theorem 21; Canonne, Kamath, Steinke 2020) that Opacus 1.4+ uses. Pure host float64 arithmetic."""
import math
import numbers

import numpy as np

from ..engine.errors import ModelFileError
from .sampledgaussian import checkedOrders, sampledGaussianRdp

# Opacus's RDPAccountant.DEFAULT_ALPHAS, built the same way so the floats are the same: 1.1, 1.2 .. 10.9
# (integers among them take the exact binomial sum), then 12 .. 63.
ORDERS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)))
# The noise noiseMultiplierFor gives up at, as Opacus's get_noise_multiplier does (MAX_SIGMA).
MAX_NOISE = 1e6


class RdpAccountant:
    """Accumulates the RDP of sampled Gaussian steps, at each of orders, for noise multipliers and sample
    rates that may change from step to step; epsilon(delta) is the guarantee so far."""

    def __init__(self, orders=ORDERS):
        self.orders = checkedOrders(orders)
        self.rdp = np.zeros_like(self.orders)
        self.steps = 0
        self.lastStep = (None, None)

    def step(self, noiseMultiplier, sampleRate, count=1):
        """Account for count steps, each with that noise multiplier (noise std over clip norm) and
        sample rate (each sample in the batch with that probability)."""
        count = checkedCount(count, "count")
        key, rdp = self.lastStep
        if key != (noiseMultiplier, sampleRate):  # training repeats one setting: compute its RDP once
            rdp = sampledGaussianRdp(sampleRate, noiseMultiplier, self.orders)
            self.lastStep = ((noiseMultiplier, sampleRate), rdp)
        self.rdp += count * rdp
        self.steps += count

    def epsilon(self, delta):
        """The epsilon of the (epsilon, delta) guarantee of the steps so far; 0 before any step that
        released something (no step, or sample rate 0 throughout)."""
        checkedDelta(delta)
        if not np.any(self.rdp > 0):
            return 0.0
        return epsilonFromRdp(self.rdp, self.orders, delta)[0]

    def getState(self):
        """Host copies of the orders, the RDP summed at each and the step count: setState of these goes on
        exactly (the same float64 sums) where this accountant stopped."""
        return {"orders": self.orders.copy(), "rdp": self.rdp.copy(), "steps": self.steps}

    def setState(self, state):
        """Restore getState() of an accountant on the same orders, checked before anything is written."""
        orders, rdp = np.asarray(state["orders"], dtype=np.float64), np.asarray(state["rdp"], dtype=np.float64)
        if orders.shape != self.orders.shape or not np.array_equal(orders, self.orders):
            raise ModelFileError("RdpAccountant.setState: the saved accountant summed RDP at other orders than "
                                 "this one; set it up with orders=the saved state's orders")
        if rdp.shape != orders.shape or not np.all(rdp >= 0):
            raise ModelFileError("RdpAccountant.setState: the saved RDP is not one non-negative value per order")
        self.rdp, self.steps = rdp.copy(), int(state["steps"])


def checkedCount(value, name, least=0):
    """value as an int, or a ValueError naming the argument unless it is an integer of at least least."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name} must be an integer of at least {least} (a number of steps), got {value!r}")
    return int(value)


def checkedDelta(delta):
    """delta as a float, or a ValueError unless it lies in (0, 1)."""
    if not 0.0 < float(delta) < 1.0:
        raise ValueError(f"delta must lie in (0, 1) (the probability the epsilon bound may fail), got {delta!r}")
    return float(delta)


def epsilonFromRdp(rdp, orders, delta):
    """(epsilon, order): the smallest epsilon over orders of rdp - (log(delta) + log(order)) / (order - 1)
    + log((order - 1) / order), and the order that gives it."""
    delta, orders = checkedDelta(delta), checkedOrders(orders)
    eps = np.asarray(rdp, dtype=np.float64) - (math.log(delta) + np.log(orders)) / (orders - 1) \
        + np.log((orders - 1) / orders)
    best = int(np.argmin(eps))
    return float(eps[best]), float(orders[best])


def epsilon(steps, sampleRate, noiseMultiplier, delta, orders=ORDERS):
    """The epsilon at delta after steps DP-SGD steps with that sample rate and noise multiplier."""
    accountant = RdpAccountant(orders)
    accountant.step(noiseMultiplier, sampleRate, count=checkedCount(steps, "steps"))
    return accountant.epsilon(delta)


def noiseMultiplierFor(targetEpsilon, steps, sampleRate, delta, orders=ORDERS, tolerance=0.01):
    """The noise multiplier whose epsilon after steps steps lies in [targetEpsilon - tolerance,
    targetEpsilon]: the bisection of Opacus's get_noise_multiplier (doubling from 20, then halving the
    bracket from 0), so it returns the same value. A ValueError says when no noise reaches the target."""
    if not 0.0 < targetEpsilon < math.inf:
        raise ValueError(f"targetEpsilon must be a positive finite number, got {targetEpsilon!r}")
    if not 0.0 < tolerance < math.inf:
        raise ValueError(f"tolerance must be a positive finite number (how far under targetEpsilon the "
                         f"result's epsilon may be), got {tolerance!r}")
    checkedCount(steps, "steps", least=1)
    if not 0.0 < sampleRate <= 1.0:
        raise ValueError(f"sampleRate must lie in (0, 1] (at 0 nothing is released and any noise does), got "
                         f"{sampleRate!r}")
    low, high, epsHigh = 0.0, 10.0, math.inf
    while epsHigh > targetEpsilon:
        high *= 2.0
        epsHigh = epsilon(steps, sampleRate, high, delta, orders)
        if epsHigh > targetEpsilon and high > MAX_NOISE:
            raise ValueError(f"targetEpsilon {targetEpsilon} is out of reach at delta {delta} over these orders: "
                             f"even noise multiplier {high:g} gives epsilon {epsHigh:.4g}; raise targetEpsilon "
                             "or delta, or add larger orders")
    while targetEpsilon - epsHigh > tolerance:
        middle = (low + high) / 2.0
        epsMiddle = epsilon(steps, sampleRate, middle, delta, orders)
        if epsMiddle < targetEpsilon:
            high, epsHigh = middle, epsMiddle
        else:
            low = middle
    return high
