"""shadow_runtime.verdict: every decision branch, the data edge cases, and bad input."""

from __future__ import annotations

import json

import pytest
from conftest import simulated_traffic as traffic
from shadow_runtime.verdict import INCONCLUSIVE, PROMOTE, REJECT, Criteria, MetricResult, compare

CRITERIA = {"sampling_percent": 50}


def test_equal_variants_promote():
    verdict = compare(*traffic(), CRITERIA)
    assert verdict.decision == PROMOTE
    assert verdict.score >= 95
    assert verdict.metrics["ModelLatency:p99"].status in ("pass", "lower")
    assert verdict.reasons[0].startswith("PROMOTE")


def test_latency_regression_beyond_tolerance_rejects_with_its_effect():
    verdict = compare(*traffic(regression=0.30), CRITERIA)
    p50 = verdict.metrics["ModelLatency:p50"]
    assert verdict.decision == REJECT
    assert verdict.metrics["ModelLatency:p99"].status == "higher"
    assert p50.status == "higher" and p50.effect == pytest.approx(0.30, abs=0.03) and p50.interval[0] > 0.2
    assert "ModelLatency:p99" in verdict.reasons[0]


def test_error_rate_increase_rejects_as_a_rate():
    verdict = compare(*traffic(error_s=0.03), CRITERIA)
    errors = verdict.metrics["Invocation5XXErrors"]
    assert verdict.decision == REJECT and errors.status == "higher" and errors.kind == "error_rate"
    assert errors.shadow == pytest.approx(0.03, abs=0.006)
    assert errors.interval[0] > 0


def test_model_errors_on_the_shadow_reject():
    assert compare(*traffic(model_errors_s=0.05), CRITERIA).metrics["InvocationModelErrors"].status == "higher"


def test_fewer_shadow_requests_and_errors_are_no_regression():
    # 120 minutes: with a 10% share the error rate needs them to be shown within tolerance at every look.
    production, shadow = traffic(minutes=120, share=0.1)
    verdict = compare(production, shadow, {"sampling_percent": 10})
    assert verdict.decision == PROMOTE
    assert verdict.traffic["observed_share"] == pytest.approx(0.1, abs=0.01)
    assert sum(shadow["Invocation5XXErrors"]) < sum(production["Invocation5XXErrors"])


def test_faster_shadow_is_an_improvement_not_a_failure():
    verdict = compare(*traffic(regression=-0.3), CRITERIA)
    assert verdict.decision == PROMOTE
    assert verdict.metrics["ModelLatency:p50"].status == "lower"


def test_too_few_minutes_is_inconclusive_never_promote():
    verdict = compare(*traffic(minutes=4), CRITERIA)
    assert verdict.decision == INCONCLUSIVE
    assert "4 paired minutes" in verdict.reasons[0]


def test_too_little_shadow_traffic_is_inconclusive():
    verdict = compare(*traffic(minutes=30, rpm=10), CRITERIA)
    assert verdict.decision == INCONCLUSIVE
    assert "fewer than the 300 needed" in verdict.reasons[0]


def test_small_regression_on_thin_data_is_inconclusive():
    production, shadow = traffic(minutes=12, rpm=60, regression=0.08)
    for series in (production, shadow):  # p99 alone: the noisiest statistic
        del series["ModelLatency:p50"], series["ModelLatency:Average"]
    verdict = compare(production, shadow, {"sampling_percent": 50, "min_shadow_invocations": 100})
    assert verdict.decision == INCONCLUSIVE
    assert verdict.metrics["ModelLatency:p99"].status == "inconclusive"


def test_all_zero_traffic_is_inconclusive_with_no_data():
    zeros = {"Invocations": [0] * 30, "Invocation5XXErrors": [None] * 30, "ModelLatency:p99": [None] * 30}
    verdict = compare(zeros, {k: list(v) for k, v in zeros.items()})
    assert verdict.decision == INCONCLUSIVE
    assert verdict.metrics["ModelLatency:p99"].status == "no data"
    assert verdict.metrics["Invocation5XXErrors"].status == "no data"
    assert verdict.traffic["shadow_invocations"] == 0


def test_missing_minutes_are_left_out_of_the_pairs():
    production, shadow = traffic(minutes=40)
    for minute in range(0, 40, 4):
        production["ModelLatency:p99"][minute] = None
    for minute in range(1, 40, 4):
        shadow["ModelLatency:p99"][minute] = None
    result = compare(production, shadow, CRITERIA).metrics["ModelLatency:p99"]
    assert result.n == 20


def test_constant_identical_series_pass():
    # 10,000 shadow requests without an error: enough for the error rates' confidence sequence.
    constant = {"Invocations": [1000] * 20, "Invocation5XXErrors": [0] * 20, "InvocationModelErrors": [0] * 20,
                "ModelLatency:p99": [25_000.0] * 20}
    verdict = compare(constant, {**constant, "Invocations": [500] * 20}, CRITERIA)
    latency = verdict.metrics["ModelLatency:p99"]
    assert (latency.status, latency.effect, latency.interval) == ("pass", 0.0, (0.0, 0.0))
    assert verdict.decision == PROMOTE


def test_constant_series_with_a_shift_is_higher():
    base = {"Invocations": [100] * 20, "Invocation5XXErrors": [0] * 20, "InvocationModelErrors": [0] * 20,
            "ModelLatency:p99": [25_000.0] * 20}
    verdict = compare(base, {**base, "ModelLatency:p99": [30_000.0] * 20}, CRITERIA)
    assert verdict.metrics["ModelLatency:p99"].effect == pytest.approx(0.2)
    assert verdict.decision == REJECT


def test_ties_in_differences_are_handled():
    production = {"Invocations": [100] * 30, "Invocation5XXErrors": [0] * 30, "InvocationModelErrors": [0] * 30,
                  "ModelLatency:p99": [100.0, 200.0, 300.0] * 10}
    shadow = {**production, "ModelLatency:p99": [100.0, 202.0, 303.0] * 10}
    result = compare(production, shadow, CRITERIA).metrics["ModelLatency:p99"]
    assert result.status == "pass" and 0 < result.effect < 0.011


def test_every_given_model_latency_statistic_is_critical_by_default():
    production, shadow = traffic(seed=8)
    shadow["ModelLatency:p50"] = [v * 1.3 for v in shadow["ModelLatency:p50"]]
    verdict = compare(production, shadow, CRITERIA)
    assert verdict.metrics["ModelLatency:p50"].critical and verdict.metrics["ModelLatency:p50"].status == "higher"
    assert verdict.decision == REJECT


def test_wildcard_critical_needs_at_least_one_statistic():
    production, shadow = traffic(seed=9)
    for series in (production, shadow):
        for key in [k for k in series if k.startswith("ModelLatency")]:
            del series[key]
    verdict = compare(production, shadow, CRITERIA)
    assert verdict.decision == INCONCLUSIVE and verdict.metrics["ModelLatency:*"].note == "not given"


def test_missing_critical_metric_blocks_promotion():
    production, shadow = traffic()
    for series in (production, shadow):
        del series["InvocationModelErrors"]
    verdict = compare(production, shadow, CRITERIA)
    assert verdict.decision == INCONCLUSIVE
    assert verdict.metrics["InvocationModelErrors"].note == "not given"


def test_non_critical_regressions_reject_on_score():
    production, shadow = traffic(seed=5)
    shadow["ModelLatency:p50"] = [v * 1.5 for v in shadow["ModelLatency:p50"]]
    shadow["ModelLatency:Average"] = [v * 1.5 for v in shadow["ModelLatency:Average"]]
    verdict = compare(production, shadow, {**CRITERIA, "weights": {"ModelLatency:p50": 5, "ModelLatency:Average": 5},
                                           "critical": ["ModelLatency:p99", "Invocation5XXErrors", "InvocationModelErrors"]})
    assert verdict.metrics["ModelLatency:p99"].status in ("pass", "lower")
    assert verdict.decision == REJECT and "marginal threshold" in verdict.reasons[0]


def test_critical_set_and_tolerance_are_configurable():
    production, shadow = traffic(regression=0.10, seed=3)
    strict = compare(production, shadow, CRITERIA)
    lenient = compare(production, shadow, {**CRITERIA, "latency_tolerance": 0.5,
                                           "critical": ["Invocation5XXErrors", "InvocationModelErrors"]})
    assert strict.decision == REJECT
    assert lenient.decision == PROMOTE


def test_low_shadow_share_is_noted():
    production, shadow = traffic(share=0.1)
    verdict = compare(production, shadow, CRITERIA)
    assert any("received 10" in r and "expected about 50%" in r for r in verdict.reasons)


def test_verdict_serializes_to_json():
    verdict = compare(*traffic(minutes=20), CRITERIA)
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["decision"] == verdict.decision
    assert data["metrics"]["ModelLatency:p99"]["interval"] == list(verdict.metrics["ModelLatency:p99"].interval)
    assert data["criteria"]["sampling_percent"] == 50


@pytest.mark.parametrize(("production", "shadow", "message"), [
    ({"ModelLatency:p99": [1.0, 2.0]}, {"ModelLatency:p99": [1.0]}, r"same minutes; got lengths \[1, 2\]"),
    ({"ModelLatency:p99": [1.0], "Invocations": [1, 2]}, {"ModelLatency:p99": [1.0], "Invocations": [1, 2]},
     r"same minutes"),
    ({"Latency:p99": [1.0]}, {"Latency:p99": [1.0]}, r"unknown metric 'Latency' in key 'Latency:p99'"),
    ({"ModelLatency": [1.0]}, {"ModelLatency": [1.0]}, r"'ModelLatency' needs a statistic"),
    ({"ModelLatency:median": [1.0]}, {"ModelLatency:median": [1.0]}, r"unknown statistic 'median'"),
    ({"Invocations:Sum": [1]}, {"Invocations:Sum": [1]}, r"Invocations is a count, read as the per-minute Sum"),
    ({"Invocations": [5, -1]}, {"Invocations": [5, 1]}, r"production\['Invocations'\]\[1\] is negative \(-1\)"),
    ({"ModelLatency:p99": [1.0, "2"]}, {"ModelLatency:p99": [1.0, 2.0]}, r"must be a finite number or None, got '2'"),
    ({"ModelLatency:p99": [float("nan")]}, {"ModelLatency:p99": [1.0]}, r"must be a finite number or None, got nan"),
    ({"ModelLatency:p99": [True]}, {"ModelLatency:p99": [1.0]}, r"must be a finite number or None, got True"),
    ({"ModelLatency:p99": "1,2"}, {"ModelLatency:p99": "1,2"}, r"must be a sequence of numbers or None, got str"),
    ({"Invocations": [1]}, {"ModelLatency:p99": [1.0]}, r"same metric keys; only in production: \['Invocations'\]"),
    ([1, 2], {}, r"production must map metric keys to per-minute sequences, got list"),
])
def test_bad_data_is_rejected_with_a_clear_value_error(production, shadow, message):
    with pytest.raises(ValueError, match=message):
        compare(production, shadow)


@pytest.mark.parametrize(("criteria", "message"), [
    ({"confidence": 1.5}, r"confidence must be a number between 0.5 and 0.9999, got 1.5"),
    ({"sampling_percent": 0}, r"sampling_percent must be a number between 1 and 100, got 0"),
    ({"min_minutes": 2.5}, r"min_minutes must be an integer between 1 and 1e\+06, got 2.5"),
    ({"critical": ["Latency:p99"]}, r"critical: unknown metric 'Latency'"),
    ({"critical": "ModelLatency:p99"}, r"critical must be a list of metric keys"),
    ({"weights": {"ModelLatency:p99": -1}}, r"weights\['ModelLatency:p99'\] must be a number >= 0, got -1"),
    ({"marginal_score": 99, "pass_score": 90}, r"marginal_score must not exceed pass_score, got 99 > 90"),
    ({"tolerance": 0.1}, r"unknown keys \['tolerance'\]"),
])
def test_bad_criteria_are_rejected(criteria, message):
    with pytest.raises(ValueError, match=message):
        compare({"Invocations": [1]}, {"Invocations": [1]}, criteria)


def test_criteria_object_is_accepted_and_defaults_are_documented_values():
    criteria = Criteria()
    assert (criteria.confidence, criteria.latency_tolerance, criteria.error_rate_tolerance) == (0.98, 0.05, 0.005)
    assert criteria.critical == ("ModelLatency:*", "Invocation5XXErrors", "InvocationModelErrors")
    assert criteria.is_critical("ModelLatency:p50") and not criteria.is_critical("OverheadLatency:p99")
    assert compare(*traffic(minutes=20), criteria).criteria is criteria


def test_a_relative_tolerance_reads_in_percent_like_its_effect():
    """"+3.0% (CI ...; tolerance +30%)", not "tolerance +0.3" beside percentages."""
    line = MetricResult(key="ModelLatency:p99", kind="latency", status="pass", critical=True, weight=1.0,
                        tolerance=0.3, effect=0.03, interval=(0.011, 0.048), n=20).describe()
    assert line == ("ModelLatency:p99 (critical): pass - shadow +3.0% (CI +1.1% to +4.8%; tolerance +30%) "
                    "over 20 paired minutes")
