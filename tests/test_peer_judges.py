"""The benchmark's peer judges behave as their originals do on clear cases."""

from __future__ import annotations

import math
import sys

import pytest
from conftest import ROOT, simulated_traffic
from shadow_runtime.verdict import INCONCLUSIVE, PROMOTE, REJECT, Criteria, compare

sys.path.insert(0, str(ROOT / "benchmarks"))
from peer_judges import kayenta_judge, previous_judge, threshold_judge  # noqa: E402

CRITERIA = Criteria(sampling_percent=50)


@pytest.mark.parametrize("judge", [threshold_judge, kayenta_judge, previous_judge])
def test_peers_promote_equal_variants_and_reject_a_large_regression(judge):
    assert judge(*simulated_traffic(seed=11), CRITERIA) == PROMOTE
    assert judge(*simulated_traffic(regression=0.5, seed=12), CRITERIA) == REJECT


def test_threshold_rule_waits_for_minimum_traffic():
    assert threshold_judge(*simulated_traffic(minutes=3, rpm=20), CRITERIA) == INCONCLUSIVE


def test_kayenta_promotes_a_regression_the_paired_judge_rejects():
    """Minute-to-minute load swings hide a 15% regression from an unpaired test, not from a paired one.
    On 8 minutes our one-look (fixed-horizon) judge shows it; the sequential one, which must stay valid at
    every later look too, does not promote it and waits for more."""
    production, shadow = simulated_traffic(minutes=8, rpm=30, regression=0.15, seed=4)
    assert kayenta_judge(production, shadow, CRITERIA) == PROMOTE
    assert compare(production, shadow, {"sampling_percent": 50, "sequential": False}).decision == REJECT
    assert compare(production, shadow, CRITERIA).decision == INCONCLUSIVE
    longer = simulated_traffic(minutes=20, rpm=30, regression=0.15, seed=4)
    assert compare(*longer, CRITERIA).decision == REJECT


def test_kayenta_promotes_thin_data_where_our_judge_waits():
    """Kayenta passes what it cannot prove different; non-inferiority does not."""
    production, shadow = simulated_traffic(minutes=8, rpm=30, seed=5)
    assert kayenta_judge(production, shadow, CRITERIA) == PROMOTE
    assert compare(production, shadow, CRITERIA).decision == INCONCLUSIVE


def test_previous_judge_rejects_on_the_estimate_beyond_the_tolerance_where_ours_waits():
    """The rule before issue 14 (kept to calibrate judge_bench against the issue's figures): a 6% slower
    shadow against a 5% tolerance, shown slower but not shown beyond 5%, was a REJECT; ours waits."""
    base = {"Invocations": [500] * 20, "Invocation5XXErrors": [0] * 20, "InvocationModelErrors": [0] * 20}
    production = {**base, "ModelLatency:p50": [100.0] * 20}
    shadow = {**base, "ModelLatency:p50": [100 * math.exp(0.06 + (0.05 if i % 2 else -0.05)) for i in range(20)]}
    assert previous_judge(production, shadow, CRITERIA) == REJECT
    assert compare(production, shadow, CRITERIA).decision == INCONCLUSIVE
    within = {**shadow, "ModelLatency:p50": [100 * math.exp(0.01 + (0.005 if i % 2 else -0.005)) for i in range(20)]}
    assert previous_judge(production, within, CRITERIA) == PROMOTE
