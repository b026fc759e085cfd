"""shadow_runtime.stats and the peer judges' rank statistics (benchmarks/rank_stats.py) cross-checked against scipy
and brute force."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
import scipy.stats as ss
from conftest import ROOT
from shadow_runtime import stats

sys.path.insert(0, str(ROOT / "benchmarks"))
import rank_stats  # noqa: E402

RNG = np.random.default_rng(20261125)


def walsh_averages(d):
    return sorted((d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d)))


@pytest.mark.parametrize("n", [1, 2, 5, 12, 30, 50, 51, 120, 400])
def test_signed_rank_p_value_matches_scipy(n):
    d = list(RNG.normal(0.2, 1, n))
    _, p = rank_stats.signed_rank_test(d)
    assert p == pytest.approx(ss.wilcoxon(d).pvalue, rel=1e-9, abs=1e-12)
    for alternative in ("less", "greater"):
        _, p1 = rank_stats.signed_rank_test(d, alternative)
        assert p1 == pytest.approx(ss.wilcoxon(d, alternative=alternative).pvalue, rel=1e-9, abs=1e-12)


def test_signed_rank_with_ties_and_zeros_matches_scipy_normal_approximation():
    d = [0.0, 0.0, 1.0, 1.0, -1.0, 2.0, 2.0, 2.0, -0.5, 3.0, 0.5, 1.5] * 3
    _, p = rank_stats.signed_rank_test(d)
    assert p == pytest.approx(ss.wilcoxon(d, zero_method="wilcox", method="approx").pvalue, rel=1e-9)


def test_all_zero_differences_are_no_evidence():
    assert rank_stats.signed_rank_test([0.0] * 20) == (0.0, 1.0)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 31, 64, 150])
def test_walsh_select_equals_brute_force(n):
    d = sorted(RNG.normal(0, 1, n).round(2))  # rounding makes ties
    averages = walsh_averages(d)
    for k in sorted(k for k in {1, 2, len(averages) // 3, len(averages) // 2 + 1, len(averages)} if 1 <= k <= len(averages)):
        assert rank_stats.walsh_select(d, k) == pytest.approx(averages[k - 1], abs=1e-12)


@pytest.mark.parametrize("n", [4, 9, 40, 300])
def test_hodges_lehmann_is_the_median_of_walsh_averages(n):
    d = list(RNG.standard_t(3, n))
    assert rank_stats.hodges_lehmann(d) == pytest.approx(float(np.median(walsh_averages(d))), abs=1e-12)


@pytest.mark.parametrize(("n", "alpha"), [(8, 0.05), (20, 0.01), (45, 0.025), (60, 0.01), (250, 0.05)])
def test_signed_rank_bounds_invert_scipys_test(n, alpha):
    """Just inside a bound the one-sided test does not reject; just outside it does."""
    d = np.array(RNG.normal(0.3, 1, n))
    low, high = rank_stats.signed_rank_bounds(list(d), alpha, alpha)
    gap = 1e-9
    assert ss.wilcoxon(d - (low - gap), alternative="greater").pvalue <= alpha
    assert ss.wilcoxon(d - (low + gap), alternative="greater").pvalue > alpha
    assert ss.wilcoxon(d - (high + gap), alternative="less").pvalue <= alpha
    assert ss.wilcoxon(d - (high - gap), alternative="less").pvalue > alpha


def test_signed_rank_bounds_cover_at_the_stated_rate():
    misses, trials = 0, 400
    for _ in range(trials):
        d = list(RNG.normal(0.5, 1, 25))
        low, high = rank_stats.signed_rank_bounds(d, 0.05, 0.05)
        misses += not low <= 0.5 <= high
    assert misses / trials == pytest.approx(0.10, abs=0.045)


@pytest.mark.parametrize(("m", "n"), [(5, 7), (30, 30), (80, 45)])
def test_mann_whitney_matches_scipy(m, n):
    x, y = list(RNG.normal(0, 1, m).round(1)), list(RNG.normal(0.4, 1, n).round(1))
    u, p = rank_stats.mann_whitney_test(x, y)
    reference = ss.mannwhitneyu(x, y, method="asymptotic")
    assert u == pytest.approx(reference.statistic) and p == pytest.approx(reference.pvalue, rel=1e-9)


@pytest.mark.parametrize(("m", "n"), [(6, 9), (40, 35)])
def test_two_sample_hodges_lehmann_and_its_interval(m, n):
    x, y = list(RNG.normal(0, 1, m)), list(RNG.normal(1, 1, n))
    differences = sorted(b - a for a, b in itertools.product(x, y))
    estimate, low, high = rank_stats.hodges_lehmann_shift(x, y, 0.95)
    assert estimate == pytest.approx(float(np.median(differences)), abs=1e-12)
    assert any(abs(low - v) < 1e-12 for v in differences) and any(abs(high - v) < 1e-12 for v in differences)
    assert low < estimate < high
    assert ss.mannwhitneyu(np.array(y) - (low - 1e-9), x, method="asymptotic", use_continuity=False).pvalue \
        == pytest.approx(0.05, abs=0.02)


@pytest.mark.parametrize(("k", "n", "confidence"), [(0, 50, 0.98), (3, 1000, 0.98), (40, 90, 0.95), (90, 90, 0.9)])
def test_wilson_interval_matches_scipy(k, n, confidence):
    reference = ss.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = stats.wilson_interval(k, n, confidence)
    assert (low, high) == (pytest.approx(reference.low, abs=1e-12), pytest.approx(reference.high, abs=1e-12))


def test_newcombe_difference_combines_the_wilson_intervals():
    delta, low, high = stats.newcombe_difference(30, 1000, 10, 2000, 0.95)
    l1, u1 = stats.wilson_interval(30, 1000, 0.95)
    l2, u2 = stats.wilson_interval(10, 2000, 0.95)
    assert delta == pytest.approx(0.025)
    assert low == pytest.approx(0.025 - np.hypot(0.03 - l1, u2 - 0.005))
    assert high == pytest.approx(0.025 + np.hypot(u1 - 0.03, 0.005 - l2))
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10, examples (a) and (b).
    assert [round(v, 4) for v in stats.newcombe_difference(56, 70, 48, 80, 0.95)[1:]] == [0.0524, 0.3339]
    assert [round(v, 4) for v in stats.newcombe_difference(9, 10, 3, 10, 0.95)[1:]] == [0.1705, 0.8090]


@pytest.mark.parametrize("n", [3, 57, 450])
def test_walsh_bisection_equals_listing(n):
    """The large-n selection path (no listing) gives the listed order statistics exactly."""
    d = sorted(RNG.lognormal(0, 1, n).round(3))
    averages = walsh_averages(d)
    for k in (1, len(averages) // 7, len(averages) // 2, len(averages) - 3, len(averages)):
        assert rank_stats._walsh_bisect(d, max(k, 1)) == pytest.approx(averages[max(k, 1) - 1], abs=1e-12)


def test_hodges_lehmann_beyond_the_listing_size():
    d = list(RNG.normal(0.1, 1, rank_stats.ENUMERATE_MAX_N + 100))
    assert rank_stats.hodges_lehmann(d) == pytest.approx(float(np.median(walsh_averages(d))), abs=1e-12)


def test_walsh_select_rejects_ranks_outside_the_averages():
    with pytest.raises(ValueError, match=r"k must be between 1 and 6, got 7"):
        rank_stats.walsh_select([1.0, 2.0, 3.0], 7)
