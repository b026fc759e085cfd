"""Confidence sequences, rank statistics and proportion intervals, in the standard library only.

Anytime-valid bounds (the verdict's): the one-sided normal-mixture boundary of Robbins (1970) in
the form of Howard, Ramdas, McAuliffe and Sekhon (2021), used as the asymptotic confidence sequence
of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas (2021, "Time-uniform central limit theory and
asymptotic confidence sequences"): ``mixture_z``, ``anytime_z``, ``weighted_mean_bounds``.

Wilson score and Newcombe hybrid score intervals for proportions. The tests cross-check every
figure against scipy. (The rank statistics of the peer judges, which the verdict no longer uses,
are in ``benchmarks/rank_stats.py``: the Lambda asset ships only what the workflow runs.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist

_NORMAL = NormalDist()


def z_quantile(p: float) -> float:
    return _NORMAL.inv_cdf(p)


# --- Anytime-valid (confidence sequence) boundaries ------------------------------------------


def mixing_scale(alpha: float) -> float:
    """rho^2 * t* of the normal mixture tightest at intrinsic time t* for level alpha (Howard et al.
    2021's choice for a target time: rho^2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / t*)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    return -2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))


def _log_mixture(z: float, r: float) -> float:
    """ln of the one-sided (half-normal) mixture martingale at standardized sum z and r = rho^2 V:
    M = 2 / sqrt(1 + r) * exp(z^2 r / (2 (1 + r))) * Phi(z sqrt(r / (1 + r)))."""
    shrink = r / (1 + r)
    tail = _NORMAL.cdf(z * math.sqrt(shrink))
    return math.log(2) - 0.5 * math.log1p(r) + z * z * shrink / 2 + (math.log(tail) if tail > 0 else -math.inf)


@lru_cache(maxsize=4096)
def mixture_z(r: float, alpha: float) -> float:
    """The one-sided normal-mixture boundary in standard units: the z at which the mixture reaches
    1/alpha at r = rho^2 V. With S_t a sum whose variance process is V_t,
    P(exists t: S_t >= z(rho^2 V_t) sqrt(V_t)) <= alpha (Ville's inequality; exact for Gaussian
    increments, asymptotic otherwise). Bisection to 1e-10."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    if not r > 0:
        raise ValueError(f"r must be > 0, got {r!r}")
    target = -math.log(alpha)
    lo, hi = 0.0, 1.0
    while _log_mixture(hi, r) < target:
        lo, hi = hi, 2 * hi
    while hi - lo > 1e-10:
        mid = (lo + hi) / 2
        if _log_mixture(mid, r) < target:
            lo = mid
        else:
            hi = mid
    return hi


def anytime_z(minutes: float, tuned_minutes: float, alpha: float) -> float:
    """The confidence sequence's z after ``minutes`` of data, tightest near ``tuned_minutes``."""
    return mixture_z(mixing_scale(alpha) * minutes / tuned_minutes, alpha)


def anytime_p_value(z: float, minutes: float, tuned_minutes: float, alpha: float) -> float:
    """Two-sided anytime-valid p-value of a zero effect: 2 / M+ at |z| (union of both sides), capped at 1."""
    r = mixing_scale(alpha) * minutes / tuned_minutes
    return min(1.0, 2 * math.exp(-_log_mixture(abs(z), r)))


def student_t_quantile(p: float, df: float) -> float:
    """Student's t quantile by the Cornish-Fisher expansion about the normal (Abramowitz & Stegun
    26.7.5); for p <= 0.9999 within 0.1% of the exact value from df = 9 on, 1.5% from df = 5."""
    z = z_quantile(p)
    if df == math.inf:
        return z
    z2 = z * z
    return (z + (z2 + 1) * z / (4 * df) + ((5 * z2 + 16) * z2 + 3) * z / (96 * df ** 2)
            + (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / (384 * df ** 3)
            + ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / (92160 * df ** 4))


def small_sample_z(z: float, df: float) -> float:
    """z made Student: the t quantile (df degrees of freedom) at the normal tail level of z, as a
    t interval is to a z interval when the variance is estimated from few points."""
    if z <= 0:
        return z
    return student_t_quantile(_NORMAL.cdf(z), df) if df < 1e6 else z


def weighted_mean(values: Sequence[float], weights: Sequence[float]) -> tuple[float, float, float, int]:
    """Weighted mean of ``values``, the total weight W, and the robust (sandwich) variance of W times
    the mean error: V = n/(n-1) * sum w^2 (x - mean)^2 — valid whatever each value's own variance
    (a 5-minute slot need not be 5 times as precise as a minute). Returns (mean, W, V, n). O(n)."""
    n = len(values)
    total = math.fsum(weights)
    if n == 0 or total <= 0:
        raise ValueError("weighted_mean needs at least one value with a positive weight")
    mean = math.fsum(w * x for w, x in zip(weights, values, strict=True)) / total
    spread = math.fsum((w * (x - mean)) ** 2 for w, x in zip(weights, values, strict=True))
    return mean, total, (spread * n / (n - 1) if n > 1 else 0.0), n


# --- Proportions --------------------------------------------------------------------------------


def wilson_interval(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (two-sided at ``confidence``)."""
    if trials == 0:
        return 0.0, 1.0
    z = z_quantile(1 - (1 - confidence) / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, confidence: float) -> tuple[float, float, float]:
    """p1 - p2 with Newcombe's hybrid score interval (method 10), two-sided at ``confidence``."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    delta = p1 - p2
    return (delta,
            delta - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            delta + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))
