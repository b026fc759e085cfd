"""The prediction-agreement criterion: judged in the verdict, measured by Athena in measure_agreement."""

from __future__ import annotations

import boto3
import pytest
from conftest import simulated_traffic
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from scipy.stats import binomtest
from shadow_runtime import handlers, report
from shadow_runtime.verdict import AGREEMENT, Criteria, compare

REGION = "us-east-1"
PRODUCTION, SHADOW = simulated_traffic(60, seed=5)


def judged(agreement, **criteria):
    # One look (fixed horizon): the intervals are scipy's Wilson intervals at the stated confidence. The sequential
    # intervals (wider at every look) are tested in test_sequential_verdict.py.
    verdict = compare(PRODUCTION, SHADOW, {"min_agreement": 0.97, "sequential": False, **criteria}, agreement=agreement)
    return verdict, verdict.metrics[AGREEMENT]


def test_without_min_agreement_nothing_is_judged():
    verdict = compare(PRODUCTION, SHADOW, agreement={"agreement": 0.5, "predictions": 9000})
    assert AGREEMENT not in verdict.metrics and verdict.decision == "PROMOTE"


def test_agreement_shown_above_the_minimum_passes():
    verdict, metric = judged({"agreement": 0.995, "predictions": 5000})
    assert verdict.decision == "PROMOTE" and metric.status == "pass" and metric.critical
    wilson = binomtest(4975, 5000).proportion_ci(confidence_level=0.98, method="wilson")  # scipy's, to cross-check
    assert metric.interval == pytest.approx((wilson.low, wilson.high), abs=1e-12)


def test_agreement_shown_below_the_minimum_rejects_even_with_healthy_metrics():
    verdict, metric = judged({"agreement": 0.90, "predictions": 5000})
    assert verdict.decision == "REJECT" and metric.status == "below minimum"
    assert verdict.reasons[0] == "REJECT: critical metric(s) regressed beyond tolerance: PredictionAgreement"


def test_agreement_near_the_minimum_or_on_few_predictions_is_inconclusive():
    verdict, metric = judged({"agreement": 0.975, "predictions": 400})
    assert (verdict.decision, metric.status) == ("INCONCLUSIVE", "inconclusive")
    verdict, metric = judged({"agreement": 1.0, "predictions": 50})
    assert verdict.decision == "INCONCLUSIVE"
    assert "50 paired predictions, fewer than the 100 needed" in verdict.reasons[0]
    verdict, metric = judged(None)
    assert (verdict.decision, metric.status) == ("INCONCLUSIVE", "no data")


def test_agreement_criteria_are_checked():
    with pytest.raises(ValueError, match=r"min_agreement must be a number between 0 and 1, got 1.5"):
        Criteria(min_agreement=1.5)
    with pytest.raises(ValueError, match=r"agreement must hold a rate 0-1"):
        compare(PRODUCTION, SHADOW, {"min_agreement": 0.9}, agreement={"agreement": 2, "predictions": 10})


def test_the_report_shows_the_agreement_row():
    verdict, _ = judged({"agreement": 0.90, "predictions": 5000})
    markdown = report.report_markdown(verdict, {})
    assert ("| **PredictionAgreement** (critical) | below minimum | - | 90.00% | 90.00% agree | 88.97% to 90.94% "
            "| min 97.00% |") in markdown


def test_hour_partitions_cover_the_window():
    assert handlers.hour_partitions("2026-11-25T13:30:00Z", "2026-11-25T15:00:00Z") == ("2026/11/25/13", "2026/11/25/14")
    assert handlers.hour_partitions("2026-12-31T23:10:00+00:00", "2027-01-01T00:40:00+00:00") == \
        ("2026/12/31/23", "2027/01/01/00")
    with pytest.raises(ValueError, match="must end after it starts"):
        handlers.hour_partitions("2026-11-25T15:00:00Z", "2026-11-25T15:00:00Z")


def _row(*values):
    return {"Data": [{"VarCharValue": v} for v in values]}


@pytest.fixture
def athena(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("athena", region_name=REGION)
        client.create_work_group(Name="shadow", Configuration={"ResultConfiguration": {"OutputLocation": "s3://r/"}})
        yield athena_backends["123456789012"][REGION], client


def test_measure_agreement_runs_the_query_over_the_windows_hours(athena):
    backend, client = athena
    header = _row("scope", "predictions", "agreement")
    backend.query_results_queue.append(QueryResults(
        rows=[header, _row("2026/11/25/13", "800", "0.99"), _row("all", "1500", "0.986")], column_info=[]))
    result = handlers.measure_agreement({"query": "SELECT 1 WHERE ? <= ? -- agreement", "workgroup": "shadow",
                                         "start": "2026-11-25T13:30:00Z", "end": "2026-11-25T14:30:00Z",
                                         "poll_seconds": 0})
    assert result["agreement"] == 0.986 and result["predictions"] == 1500
    assert result["hours"] == ["2026/11/25/13", "2026/11/25/14"]
    execution = client.get_query_execution(QueryExecutionId=result["query_execution_id"])["QueryExecution"]
    assert execution["WorkGroup"] == "shadow" and execution["Query"].endswith("-- agreement")
    assert execution["ExecutionParameters"] == ["'2026/11/25/13'", "'2026/11/25/14'"]  # string literals, as Athena wants


def test_no_paired_predictions_is_no_agreement(athena):
    backend, _ = athena
    backend.query_results_queue.append(QueryResults(rows=[_row("scope", "predictions", "agreement")], column_info=[]))
    result = handlers.measure_agreement({"query": "SELECT 1", "workgroup": "shadow", "start": "2026-11-25T13:30:00Z",
                                         "end": "2026-11-25T14:30:00Z", "poll_seconds": 0})
    assert (result["agreement"], result["predictions"]) == (None, 0)


def test_a_query_without_the_expected_columns_is_an_error():
    with pytest.raises(ValueError, match=r"missing \['agreement'\]"):
        handlers.agreement_from_results([{"ResultSet": {"Rows": [_row("scope", "predictions")]}}])


def test_a_query_that_runs_too_long_is_stopped_and_an_error(athena):
    from moto.moto_api import state_manager

    _, client = athena
    state_manager.set_transition(model_name="athena::execution", transition={"progression": "manual", "times": 10 ** 6})
    try:
        with pytest.raises(TimeoutError, match=r"the agreement query \S+ ran longer than 0 s"):
            handlers.measure_agreement({"query": "SELECT 1", "workgroup": "shadow", "start": "2026-11-25T13:30:00Z",
                                        "end": "2026-11-25T14:30:00Z", "poll_seconds": 0, "timeout_seconds": 0})
    finally:
        state_manager.unset_transition(model_name="athena::execution")
    execution_id = client.list_query_executions()["QueryExecutionIds"][0]
    assert client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]["State"] == "CANCELLED"


def test_results_without_even_a_header_are_an_error():
    with pytest.raises(ValueError, match="the agreement query returned no rows, not even its header"):
        handlers.agreement_from_results([{"ResultSet": {"Rows": []}}])
