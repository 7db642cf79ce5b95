"""Rényi differential privacy of one step of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019,
"Rényi Differential Privacy of the Sampled Gaussian Mechanism", section 3.3): each sample is in the batch
with probability q, the clipped sum gets Gaussian noise of standard deviation sigma times the clip norm.

The RDP at order alpha is log(A_alpha) / (alpha - 1), A_alpha = E_{z ~ N(0, s^2)} [((1-q) + q
exp((2z - 1) / (2 s^2)))^alpha], computed as TF Privacy and Opacus do: a finite binomial sum for integer
orders, two series of Gaussian tail integrals for fractional ones, summed in float64 in log space."""
import math

import numpy as np

# Where math.erfc nears underflow (erfc(26.5) ~ 1e-307) its asymptotic series is exact to ~1e-13.
_ERFC_TAIL = 25.0
# A fractional order's series stops after the first term under exp(-30) in both halves, as Opacus's does.
_SERIES_END = -30.0


def sampledGaussianRdp(sampleRate, noiseMultiplier, orders):
    """RDP of one step at each of orders (each > 1), a float64 array: 0 at sampleRate 0 (nothing is
    released), the Gaussian mechanism's alpha / (2 sigma^2) at sampleRate 1."""
    q, sigma = float(sampleRate), float(noiseMultiplier)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"sampleRate must lie in [0, 1] (the probability that a sample is in a batch), got "
                         f"{sampleRate!r}")
    if not 0.0 < sigma < math.inf:
        raise ValueError(f"noiseMultiplier must be a positive finite number (the noise's standard deviation "
                         f"over the clip norm), got {noiseMultiplier!r}")
    alphas = checkedOrders(orders)
    if q == 0.0:
        return np.zeros_like(alphas)
    if q == 1.0:
        return alphas / (2.0 * sigma ** 2)
    logA = [_logAInteger(q, sigma, int(alpha)) if alpha.is_integer() else _logAFractional(q, sigma, alpha)
            for alpha in alphas.tolist()]
    return np.array(logA) / (alphas - 1.0)


def checkedOrders(orders):
    """orders as a float64 array, or a ValueError unless they are a non-empty list of finite orders above 1."""
    alphas = np.asarray(orders, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas) & (alphas > 1.0)):
        raise ValueError(f"orders must be a non-empty list of finite Rényi orders above 1, got {orders!r}")
    return alphas


def _logAInteger(q, sigma, alpha):
    """log A_alpha for an integer order: the sum over i of C(alpha, i) q^i (1-q)^(alpha-i)
    exp((i^2 - i) / (2 sigma^2))."""
    i = np.arange(alpha + 1, dtype=np.float64)
    logBinom = np.array([math.log(math.comb(alpha, k)) for k in range(alpha + 1)])
    terms = logBinom + i * math.log(q) + (alpha - i) * math.log1p(-q) + (i * i - i) / (2.0 * sigma ** 2)
    return _logSumExp(terms)


def _logAFractional(q, sigma, alpha):
    """log A_alpha for a fractional order: the integral split at z0, where the mixture's two components
    cross, each half a series in the signed generalised binomial coefficients C(alpha, i)."""
    z0 = sigma ** 2 * math.log(1.0 / q - 1.0) + 0.5
    count = 64
    while True:
        i = np.arange(count, dtype=np.float64)
        j = alpha - i
        logBinom, sign = _logAbsBinom(alpha, count)
        logS0 = (logBinom + i * math.log(q) + j * math.log1p(-q) + (i * i - i) / (2.0 * sigma ** 2)
                 + math.log(0.5) + logErfc((i - z0) / (math.sqrt(2.0) * sigma)))
        logS1 = (logBinom + j * math.log(q) + i * math.log1p(-q) + (j * j - j) / (2.0 * sigma ** 2)
                 + math.log(0.5) + logErfc((z0 - j) / (math.sqrt(2.0) * sigma)))
        ended = np.flatnonzero(np.maximum(logS0, logS1) < _SERIES_END)
        if ended.size:
            break
        count *= 4
    last = ended[0] + 1
    positive = sign[:last] > 0
    halves = [_logDifference(_logSumExp(s[:last][positive]), _logSumExp(s[:last][~positive]))
              for s in (logS0, logS1)]
    return float(np.logaddexp(*halves))


def _logAbsBinom(alpha, count):
    """log |C(alpha, i)| and its sign for i = 0 .. count-1, from the running product of (alpha - k) / (k + 1)."""
    k = np.arange(count - 1, dtype=np.float64)
    factors = (alpha - k) / (k + 1.0)
    logAbs = np.concatenate(([0.0], np.cumsum(np.log(np.abs(factors)))))
    sign = np.concatenate(([1.0], np.cumprod(np.sign(factors))))
    return logAbs, sign


def logErfc(x):
    """log(erfc(x)) elementwise, accurate where erfc underflows (large x) through its asymptotic series."""
    out = np.empty_like(x)
    tail = x > _ERFC_TAIL
    t = x[tail]
    out[tail] = (-0.5 * math.log(math.pi) - np.log(t) - t * t - 0.5 * t ** -2 + 0.625 * t ** -4
                 - 37.0 / 24.0 * t ** -6 + 353.0 / 64.0 * t ** -8)
    out[~tail] = np.log(np.frompyfunc(math.erfc, 1, 1)(x[~tail]).astype(np.float64))
    return out


def _logSumExp(terms):
    """log(sum(exp(terms))), -inf for no terms."""
    if terms.size == 0:
        return -math.inf
    top = float(np.max(terms))
    return top + math.log(float(np.sum(np.exp(terms - top))))


def _logDifference(logX, logY):
    """log(exp(logX) - exp(logY)): the positive and the negative part of a series whose sum is positive;
    -inf where rounding leaves nothing."""
    if logY == -math.inf:
        return logX
    if logY >= logX:
        return -math.inf
    return logX + math.log(-math.expm1(logY - logX))
