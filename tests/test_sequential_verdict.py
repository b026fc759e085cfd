"""The verdict under repeated looks: the confidence sequence's coverage, its bounds, the new criteria
and mixed 1- and 5-minute slots."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import simulated_traffic
from shadow_runtime import stats
from shadow_runtime.verdict import INCONCLUSIVE, PROMOTE, REJECT, Criteria, compare

CRITERIA = {"sampling_percent": 50}


def _ever_misses(rng, alpha, looks, runs, sequential, heavy=False):
    """Share of simulated null tests in which the one-sided lower bound (as the verdict computes it:
    mean, sandwich variance, Student correction) ever exceeds the true mean at one of the looks."""
    d = rng.standard_t(3, (runs, looks[-1])) if heavy else rng.normal(0.0, 1.0, (runs, looks[-1]))
    n = np.array(looks)
    sums, squares = np.cumsum(d, axis=1)[:, n - 1], np.cumsum(d * d, axis=1)[:, n - 1]
    mean = sums / n
    variance = (squares - n * mean ** 2) * n / (n - 1)
    z = np.array([stats.small_sample_z(stats.anytime_z(k, 30, alpha) if sequential else stats.z_quantile(1 - alpha),
                                       k - 1) for k in looks])
    return float(np.mean(np.any(mean - z * np.sqrt(variance) / n > 0, axis=1)))


@pytest.mark.parametrize(("heavy", "alpha"), [(False, 0.02), (True, 0.02), (False, 0.05), (True, 0.05)])
def test_the_confidence_sequence_covers_over_every_look(heavy, alpha):
    """Looking every 5 minutes up to 5 hours, the bound is ever wrong in at most alpha of the tests
    (2%, REJECT's default, or 5%, PROMOTE's; plus three standard errors of the simulation);
    fixed-horizon bounds on the same looks are not."""
    rng = np.random.default_rng(14)
    looks = list(range(5, 301, 5))
    sequential = _ever_misses(rng, alpha, looks, 4000, True, heavy)
    assert sequential <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / 4000)
    assert _ever_misses(rng, alpha, looks, 4000, False, heavy) > 3 * alpha  # what repeated looks do to one-look bounds


def test_the_mixture_boundary_solves_its_equation_and_is_ordered():
    for r in (0.1, 1.0, 10.0, 300.0):
        for alpha in (0.001, 0.02, 0.1):
            z = stats.mixture_z(r, alpha)
            assert stats._log_mixture(z, r) == pytest.approx(-math.log(alpha), abs=1e-8)
            two_sided = math.sqrt((1 + r) / r * 2 * math.log(math.sqrt(1 + r) / alpha))  # Robbins' closed form
            assert stats.z_quantile(1 - alpha) < z < two_sided
    zs = [stats.anytime_z(t, 30, 0.02) for t in (5, 10, 30, 100, 1000, 43_200)]
    assert min(zs) == zs[2]  # tightest at the tuned length, wider both ways, never below one look's z
    assert all(z > stats.z_quantile(0.98) for z in zs)
    assert stats.anytime_z(30, 30, 0.004) > stats.anytime_z(30, 30, 0.02)


def test_weighted_mean_uses_a_variance_valid_whatever_each_slots_precision():
    mean, total, variance, n = stats.weighted_mean([0.1, 0.3, -0.1], [5, 1, 1])
    assert mean == pytest.approx(0.1) and (total, n) == (7, 3)
    expected = 3 / 2 * sum((w * (x - 0.1)) ** 2 for x, w in ((0.1, 5), (0.3, 1), (-0.1, 1)))
    assert variance == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least one value"):
        stats.weighted_mean([], [])


def test_student_quantile_is_close_to_the_exact_one():
    import scipy.stats as ss
    for df in (9, 20, 200):
        for p in (0.9, 0.99, 0.999):
            assert stats.student_t_quantile(p, df) == pytest.approx(ss.t.ppf(p, df), rel=1e-3)


def test_sequential_bounds_are_wider_than_one_looks_and_contain_the_estimate():
    production, shadow = simulated_traffic(minutes=60, regression=0.03, seed=21)
    sequential = compare(production, shadow, CRITERIA).metrics["ModelLatency:p99"]
    fixed = compare(production, shadow, {**CRITERIA, "sequential": False}).metrics["ModelLatency:p99"]
    assert sequential.effect == fixed.effect
    assert sequential.interval[0] < fixed.interval[0] < fixed.effect < fixed.interval[1] < sequential.interval[1]
    assert sequential.p_value > fixed.p_value


def test_reject_needs_the_increase_beyond_the_tolerance_shown_not_only_estimated():
    """A shadow 6% slower (spread 5%) against a 5% tolerance: the estimate is beyond it, its lower bound
    is not, so it is not a regression yet (the old rule, estimate beyond and lower bound above 0, rejected)."""
    base = {"Invocations": [500] * 20, "Invocation5XXErrors": [0] * 20, "InvocationModelErrors": [0] * 20}
    production = {**base, "ModelLatency:p50": [100.0] * 20}
    shadow = {**base, "ModelLatency:p50": [100 * math.exp(0.06 + (0.05 if i % 2 else -0.05)) for i in range(20)]}
    for sequential in (False, True):
        p50 = compare(production, shadow, {**CRITERIA, "sequential": sequential}).metrics["ModelLatency:p50"]
        assert p50.effect > 0.05 and 0 < p50.interval[0] < 0.05 and p50.status == "inconclusive"
    tighter = {**shadow, "ModelLatency:p50": [100 * math.exp(0.06 + (0.001 if i % 2 else -0.001)) for i in range(20)]}
    assert compare(production, tighter, CRITERIA).decision == REJECT


def test_a_regression_stays_rejected_and_equal_variants_stay_promoted_on_later_looks():
    """Decisions on a growing window: once shown, more data does not undo them (here)."""
    for regression, expected in ((0.3, REJECT), (0.0, PROMOTE)):
        production, shadow = simulated_traffic(minutes=120, regression=regression, seed=24)
        decisions = [compare({k: v[:m] for k, v in production.items()}, {k: v[:m] for k, v in shadow.items()},
                             CRITERIA).decision for m in range(10, 121, 10)]
        first = next(i for i, d in enumerate(decisions) if d != INCONCLUSIVE)
        assert set(decisions[first:]) == {expected} and set(decisions[:first]) <= {INCONCLUSIVE}


def _five_minute(series, minutes):
    """The first ``minutes`` as CloudWatch's 5-minute periods (Sum of counts, a statistic's mean), the rest as is."""
    out = {}
    for key, values in series.items():
        head = np.array(values[:minutes], dtype=float).reshape(-1, 5)
        counted = key.startswith("Invocation")
        out[key] = (head.sum(axis=1) if counted else head.mean(axis=1)).tolist() + list(values[minutes:])
    return out


@pytest.mark.parametrize(("regression", "expected"), [(0.0, PROMOTE), (0.3, REJECT)])
def test_mixed_5_and_1_minute_slots_judge_like_the_minutes(regression, expected):
    production, shadow = simulated_traffic(minutes=120, regression=regression, seed=25)
    slots = [5] * 12 + [1] * 60
    mixed = compare(_five_minute(production, 60), _five_minute(shadow, 60), CRITERIA, slot_minutes=slots)
    minutes = compare(production, shadow, CRITERIA)
    assert mixed.decision == minutes.decision == expected
    assert mixed.traffic["minutes"] == 120 and mixed.traffic["slots"] == 72
    assert mixed.traffic["shadow_invocations"] == minutes.traffic["shadow_invocations"]
    p50 = mixed.metrics["ModelLatency:p50"]
    assert p50.n == 120 and p50.effect == pytest.approx(minutes.metrics["ModelLatency:p50"].effect, abs=0.01)


def test_a_5_minute_slot_weighs_five_minutes():
    base = {"Invocations": [500] * 10, "Invocation5XXErrors": [0] * 10, "InvocationModelErrors": [0] * 10}
    production = {**base, "ModelLatency:p50": [100.0] * 10}
    shadow = {**base, "ModelLatency:p50": [110.0] * 5 + [100.0] * 5}
    even = compare(production, shadow, CRITERIA).metrics["ModelLatency:p50"]
    weighted = compare(production, shadow, CRITERIA, slot_minutes=[5] * 5 + [1] * 5).metrics["ModelLatency:p50"]
    assert even.effect == pytest.approx(math.expm1(math.log(1.1) / 2))
    assert weighted.effect == pytest.approx(math.expm1(math.log(1.1) * 25 / 30)) and weighted.n == 30


@pytest.mark.parametrize(("slot_minutes", "message"), [
    ([1] * 3, r"slot_minutes must give one length per slot: 4 slots, got 3 lengths"),
    ([1, 1, 0, 1], r"slot_minutes\[2\] must be a number of minutes above 0 and at most 1440, got 0"),
    ([1, 1, True, 1], r"slot_minutes\[2\] must be a number of minutes above 0 and at most 1440, got True"),
    ("1111", r"slot_minutes must be a sequence of minutes per slot, got str"),
])
def test_bad_slot_minutes_are_rejected(slot_minutes, message):
    with pytest.raises(ValueError, match=message):
        compare({"Invocations": [1] * 4}, {"Invocations": [1] * 4}, slot_minutes=slot_minutes)


@pytest.mark.parametrize(("criteria", "message"), [
    ({"sequential": "yes"}, r"sequential must be true or false, got 'yes'"),
    ({"sequential": 1}, r"sequential must be true or false, got 1"),
    ({"promote_confidence": 0.3}, r"promote_confidence must be a number between 0.5 and 0.9999, got 0.3"),
    ({"promote_confidence": 1}, r"promote_confidence must be a number between 0.5 and 0.9999, got 1"),
    ({"sequential_tuned_minutes": 0}, r"sequential_tuned_minutes must be a number between 1 and 100000, got 0"),
    ({"sequential_tuned_minutes": "30"}, r"sequential_tuned_minutes must be a number between 1 and 100000, got '30'"),
])
def test_bad_sequential_criteria_are_rejected_naming_field_and_value(criteria, message):
    with pytest.raises(ValueError, match=message):
        Criteria.from_mapping(criteria)


def test_sequential_defaults():
    criteria = Criteria()
    assert (criteria.sequential, criteria.promote_confidence, criteria.sequential_tuned_minutes) == (True, 0.95, 30.0)
    assert criteria.promote_alpha == pytest.approx(0.05)
    assert Criteria(promote_confidence=None).promote_alpha == pytest.approx(0.02)  # None: confidence
    assert Criteria(confidence=0.99, promote_confidence=None).promote_alpha == pytest.approx(0.01)


def test_promote_uses_its_own_confidence_and_reject_keeps_confidence():
    """An upper bound within the tolerance at 95% but not at 98%: PROMOTE by default, INCONCLUSIVE with
    promote_confidence=None (98%); a lower PROMOTE confidence never makes a REJECT easier."""
    base = {"Invocations": [500] * 40, "Invocation5XXErrors": [0] * 40, "InvocationModelErrors": [0] * 40}
    production = {**base, "ModelLatency:p50": [100.0] * 40}
    shadow = {**base, "ModelLatency:p50": [100 * math.exp(0.01 + (0.079 if i % 2 else -0.079)) for i in range(40)]}
    default = compare(production, shadow, CRITERIA)
    strict = compare(production, shadow, {**CRITERIA, "promote_confidence": None})
    assert (default.decision, strict.decision) == (PROMOTE, INCONCLUSIVE)
    assert default.metrics["ModelLatency:p50"].interval == strict.metrics["ModelLatency:p50"].interval
    regressed = {**shadow, "ModelLatency:p50": [100 * math.exp(0.07 + (0.079 if i % 2 else -0.079)) for i in range(40)]}
    assert {compare(production, regressed, {**CRITERIA, "promote_confidence": c}).decision
            for c in (None, 0.95, 0.6)} == {INCONCLUSIVE}


def test_too_few_slots_to_bound_a_latency_are_undecided():
    production, shadow = simulated_traffic(minutes=4, regression=0.5, seed=26)
    p99 = compare(production, shadow, CRITERIA).metrics["ModelLatency:p99"]
    assert p99.status == "inconclusive" and "fewer than the 5 needed" in p99.note


def _shifted(mean: float, spread: float, minutes: int, counts: bool) -> tuple[dict, dict]:
    """p50 series whose per-minute ln ratio alternates mean +/- spread (standard error spread / sqrt(minutes - 1))."""
    base = {"Invocations": [500] * minutes, "Invocation5XXErrors": [0] * minutes,
            "InvocationModelErrors": [0] * minutes} if counts else {}
    production = {**base, "ModelLatency:p50": [100.0] * minutes}
    shadow = {**base, "ModelLatency:p50": [100 * math.exp(mean + (spread if i % 2 else -spread)) for i in range(minutes)]}
    return production, shadow


@pytest.mark.parametrize("counts", [True, False])
def test_reject_boundary_is_the_mixture_at_alpha_split_over_metrics_made_student(counts):
    """The REJECT rule the power table's frontier rests on (docs/sequential-verdict.md): after n paired minutes a
    latency is higher exactly when mean - z * se > ln(1 + tolerance), z the normal mixture's at (1 - confidence) / k
    (k judged metrics: 3 with the error series, 1 without) made Student with n - 1 degrees of freedom."""
    minutes, spread, limit = 20, 0.1, math.log1p(0.05)
    k = 3 if counts else 1
    z = stats.small_sample_z(stats.anytime_z(minutes, 30, 0.02 / k), minutes - 1)
    se = spread / math.sqrt(minutes - 1)
    assert z > stats.anytime_z(minutes, 30, 0.02 / k) > stats.z_quantile(1 - 0.02 / k)  # the anytime and Student prices
    for margin, status in ((0.002, "higher"), (-0.002, "inconclusive")):
        production, shadow = _shifted(limit + z * se + margin, spread, minutes, counts)
        verdict = compare(production, shadow, CRITERIA)
        assert verdict.metrics["ModelLatency:p50"].status == status
        assert verdict.decision == (REJECT if status == "higher" else INCONCLUSIVE)


def test_splitting_reject_alpha_over_more_metrics_needs_a_larger_shift():
    """The same p50 shift, shown beyond the tolerance when p50 is the only judged metric (all of the 2%), is not yet
    when the error series share the 2% (Bonferroni): the split is what separates ours from one-statistic judges."""
    minutes, spread = 20, 0.1
    alone = stats.small_sample_z(stats.anytime_z(minutes, 30, 0.02), minutes - 1)
    split = stats.small_sample_z(stats.anytime_z(minutes, 30, 0.02 / 3), minutes - 1)
    mean = math.log1p(0.05) + (alone + split) / 2 * spread / math.sqrt(minutes - 1)
    assert compare(*_shifted(mean, spread, minutes, counts=False), CRITERIA).decision == REJECT
    assert compare(*_shifted(mean, spread, minutes, counts=True), CRITERIA).decision == INCONCLUSIVE
