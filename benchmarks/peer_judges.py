"""The peers' methods, re-implemented on the same per-minute data as our judge, for the benchmark.

* ``threshold_judge`` — Argo Rollouts / Flagger style: aggregate each metric over the window and
  compare with a fixed tolerance (relative for latencies, absolute for error rates); any breach
  fails, otherwise promote. Argo's and Flagger's thresholds are usually absolute (``p99 < 500ms``);
  here they are relative to production so that every judge gets the same tolerance.
* ``kayenta_judge`` — Kayenta's NetflixACAJudge with its Mann-Whitney classifier: per metric a
  two-sided Mann-Whitney U test at 98% confidence on the two variants' per-minute values as
  independent samples, the Hodges-Lehmann shift with its interval, "High" when the interval lies
  above zero and the shift (relative to the control median for latencies) is beyond the
  tolerance; critical metrics fail the run; weighted score >= 95 pass, >= 75 marginal, else fail.
  Error metrics are given to it as per-minute rates, as Kayenta users configure them.
* ``previous_judge`` — this project's verdict before issue 14 (git ab88018~1), kept to calibrate the
  benchmark's world against the issue's figures: per latency statistic the Wilcoxon signed-rank
  Hodges-Lehmann estimate of the paired log ratios with its one-sided bounds; "higher" when the
  lower bound (Bonferroni over the judged metrics) is above 0 and the *estimate* beyond the
  tolerance; "pass" when the upper bound is within it; error rates the same with Newcombe's
  interval. Fixed-horizon bounds, so looking often inflates its errors.
"""

from __future__ import annotations

import math
import statistics

from rank_stats import hodges_lehmann_shift, mann_whitney_test, signed_rank_estimate
from shadow_runtime.stats import newcombe_difference
from shadow_runtime.verdict import ERROR_METRICS, INCONCLUSIVE, PROMOTE, REJECT, Criteria

Series = dict[str, list]


def _rates(series: Series, key: str) -> list[float]:
    return [e / n for e, n in zip(series[key], series["Invocations"], strict=True) if n]


def threshold_judge(production: Series, shadow: Series, criteria: Criteria) -> str:
    calls_p, calls_s = sum(production["Invocations"]), sum(shadow["Invocations"])
    if calls_s < criteria.min_shadow_invocations:
        return INCONCLUSIVE
    for key in production:
        if key in ("Invocations", "InvocationsPerInstance"):
            continue
        if key in ERROR_METRICS:
            if sum(shadow[key]) / calls_s - sum(production[key]) / calls_p > criteria.error_rate_tolerance:
                return REJECT
            continue
        p = [v for v in production[key] if v is not None]
        s = [v for v in shadow[key] if v is not None]
        if p and s and statistics.fmean(s) / statistics.fmean(p) - 1 > criteria.tolerance(key):
            return REJECT
    return PROMOTE


def kayenta_judge(production: Series, shadow: Series, criteria: Criteria) -> str:
    weights, passed, failed_critical = 0.0, 0.0, False
    for key in production:
        if key in ("Invocations", "InvocationsPerInstance"):
            continue
        if key in ERROR_METRICS:
            control, experiment = _rates(production, key), _rates(shadow, key)
        else:
            control = [v for v in production[key] if v is not None]
            experiment = [v for v in shadow[key] if v is not None]
        if len(control) < 2 or len(experiment) < 2:
            continue  # Kayenta reports NODATA and leaves the metric out of the score
        weight = criteria.weight(key)
        weights += weight
        _, p_value = mann_whitney_test(control, experiment)
        estimate, low, _ = hodges_lehmann_shift(control, experiment, criteria.confidence)
        median = statistics.median(control)
        effect = estimate if key in ERROR_METRICS else (estimate / median if median else 0.0)
        high = p_value < 1 - criteria.confidence and low > 0 and effect > criteria.tolerance(key)
        if high and criteria.is_critical(key):
            failed_critical = True
        passed += 0 if high else weight
    if failed_critical:
        return REJECT
    score = 100 * passed / weights if weights else 0.0
    if score >= criteria.pass_score:
        return PROMOTE
    return INCONCLUSIVE if score >= criteria.marginal_score else REJECT


def previous_judge(production: Series, shadow: Series, criteria: Criteria) -> str:
    keys = [k for k in production if k not in ("Invocations", "InvocationsPerInstance")]
    alpha = 1 - criteria.confidence
    alpha_higher = alpha / max(1, len(keys))
    calls_p, calls_s = sum(production["Invocations"]), sum(shadow["Invocations"])
    points = {}  # key -> 1 pass, 0.5 undecided, 0 higher
    paired = 0
    for key in keys:
        tolerance = criteria.tolerance(key)
        if key in ERROR_METRICS:
            if not calls_p or not calls_s:
                continue
            args = (int(sum(shadow[key])), int(calls_s), int(sum(production[key])), int(calls_p))
            estimate, _, _ = newcombe_difference(*args, 0.5)
            higher = newcombe_difference(*args, 1 - 2 * alpha_higher)[1] > 0 and estimate > tolerance
            passed = newcombe_difference(*args, 1 - 2 * alpha)[2] <= tolerance
        else:
            d = [math.log(s / p) for p, s in zip(production[key], shadow[key], strict=True) if p and s]
            if not d:
                continue
            paired = max(paired, len(d))
            estimate, ((low_higher, _), (_, high)) = signed_rank_estimate(d, [alpha_higher, alpha])
            higher = low_higher > 0 and math.expm1(estimate) > tolerance
            passed = math.expm1(high) <= tolerance
        points[key] = 0.0 if higher else 1.0 if passed else 0.5
    if any(v == 0 and criteria.is_critical(k) for k, v in points.items()):
        return REJECT
    weights = {k: criteria.weight(k) for k in points}
    total = sum(weights.values())
    if total and 100 * sum(w for k, w in weights.items() if points[k] > 0) / total < criteria.marginal_score:
        return REJECT
    critical_passed = all(points.get(k, 0.5) == 1 for k in keys if criteria.is_critical(k))
    score = 100 * sum(points[k] * w for k, w in weights.items()) / total if total else 0.0
    if critical_passed and paired >= criteria.min_minutes and calls_s >= criteria.min_shadow_invocations \
            and score >= criteria.pass_score:
        return PROMOTE
    return INCONCLUSIVE
