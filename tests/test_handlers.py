"""The workflow's Lambda handlers against moto (S3, auto scaling), the SageMaker double, and a
botocore Stubber for GetMetricData (moto's crashes on percentile statistics)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from unittest import mock

import boto3
import botocore.session
import numpy as np
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator
from conftest import create_churn_endpoint, simulated_traffic
from moto import mock_aws
from shadow_runtime import handlers

from shadow_emulator import SageMakerDouble

REGION = "us-east-1"
DIM = "sagemaker:variant:DesiredInstanceCount"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(), SageMakerDouble(update_polls=1) as double:
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="reports")
        sm = boto3.client("sagemaker", region_name=REGION)
        create_churn_endpoint(sm, shadow_instance_type="ml.c5.xlarge", capture={
            "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://capture/datacapture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
        yield sm, double


def metric_results(start: datetime, minutes: int = 30):
    production, shadow = simulated_traffic(minutes=minutes, seed=31)
    results = []
    for role, data in (("production", production), ("shadow", shadow)):
        for key, values in data.items():
            points = [(start + timedelta(minutes=i), v) for i, v in enumerate(values) if v is not None]
            results.append({"Id": f"m_{role}_{len(results)}", "Label": f"{role}|{key}", "StatusCode": "Complete",
                            "Timestamps": [t for t, _ in points], "Values": [float(v) for _, v in points]})
    return production, shadow, results


def test_gather_pages_through_get_metric_data_and_stores_aligned_series(aws):
    start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    production, shadow, results = metric_results(start)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    queries = [{"Id": "m_production_invocations", "Label": "production|Invocations", "MetricStat": {
        "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations",
                   "Dimensions": [{"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": "production"}]},
        "Period": 60, "Stat": "Sum"}}]
    expected = {"MetricDataQueries": queries, "StartTime": start, "EndTime": start + timedelta(minutes=30),
                "ScanBy": "TimestampAscending"}
    with Stubber(cloudwatch) as stub:  # validates each request against botocore's model
        stub.add_response("get_metric_data", {"MetricDataResults": results[:3], "NextToken": "page-2"}, expected)
        stub.add_response("get_metric_data", {"MetricDataResults": results[3:]}, {**expected, "NextToken": "page-2"})
        real = handlers._client
        with mock.patch.object(handlers, "_client", lambda s: cloudwatch if s == "cloudwatch" else real(s)), \
                mock.patch.object(handlers, "_now", lambda: datetime(2026, 11, 25, 9, 31, tzinfo=UTC)):
            out = handlers.gather_metrics({"queries": queries, "end": "2026-11-25T09:30:20Z", "minutes": 30,
                                           "report_bucket": "reports", "report_prefix": "churn/run-1"})
        stub.assert_no_pending_responses()
    assert out == {"start": "2026-11-25T09:00:00+00:00", "end": "2026-11-25T09:30:00+00:00",
                   "series": "s3://reports/churn/run-1/series.json", "minutes": 30,
                   "periods": [{"start": "2026-11-25T09:00:00+00:00", "end": "2026-11-25T09:30:00+00:00", "period": 60}]}
    stored = json.loads(boto3.client("s3", region_name=REGION).get_object(
        Bucket="reports", Key="churn/run-1/series.json")["Body"].read())
    assert stored["production"]["ModelLatency:p99"] == production["ModelLatency:p99"]
    assert stored["shadow"]["Invocations"] == [float(v) for v in shadow["Invocations"]]
    assert "slot_minutes" not in stored  # every slot a minute


CLOUDWATCH = botocore.session.get_session().get_service_model("cloudwatch")
COUNTS = ("Invocations", "Invocation5XXErrors", "InvocationModelErrors")


class RetainingCloudWatch:
    """GetMetricData as CloudWatch answers it for old data: each request is validated against botocore's
    model; a 60-second period returns no point older than 15 days, a 300-second one the 5-minute
    aggregate (Sum for counts, the mean of the minutes for a statistic: close enough to judge);
    pages of at most ``page_queries`` results."""

    def __init__(self, now: datetime, first_minute: datetime, truth: dict[str, list[float]], page_queries: int = 4):
        self.now, self.first, self.truth, self.page_queries = now, first_minute, truth, page_queries
        self.requests: list[dict] = []

    def get_metric_data(self, **request):
        report = ParamValidator().validate(request, CLOUDWATCH.operation_model("GetMetricData").input_shape)
        assert not report.has_errors(), report.generate_report()
        self.requests.append(request)
        begin = int((request["StartTime"] - self.first).total_seconds()) // 60
        finish = int((request["EndTime"] - self.first).total_seconds()) // 60
        results = []
        for query in request["MetricDataQueries"]:
            period = query["MetricStat"]["Period"] // 60
            key = query["Label"].split("|")[1]
            values = self.truth[query["Label"]]
            stamps, points = [], []
            for slot in range(begin, finish, period):
                stamp = self.first + timedelta(minutes=slot)
                if period == 1 and stamp < self.now - timedelta(days=15):
                    continue  # rolled up: CloudWatch keeps 1-minute points for 15 days
                chunk = values[max(slot, 0):slot + period]
                if chunk:
                    stamps.append(stamp)
                    points.append(float(sum(chunk)) if key in COUNTS else float(sum(chunk) / len(chunk)))
            results.append({"Id": query["Id"], "Label": query["Label"], "StatusCode": "Complete",
                            "Timestamps": stamps, "Values": points})
        start = int(request.get("NextToken", 0))
        page = {"MetricDataResults": results[start:start + self.page_queries]}
        if start + self.page_queries < len(results):
            page["NextToken"] = str(start + self.page_queries)
        return page


def test_a_30_day_window_is_asked_in_5_minute_periods_where_cloudwatch_keeps_no_minutes_and_judged_whole(aws):
    now = datetime(2026, 12, 1, 12, 0, 7, tzinfo=UTC)
    minutes = 30 * 1440
    first = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    rng = np.random.default_rng(41)
    load = np.exp(rng.normal(0, 0.15, minutes))
    truth = {}
    for role, factor in (("production", 1.0), ("shadow", 1.3)):  # the shadow 30% slower throughout
        truth[f"{role}|Invocations"] = [100.0] * minutes
        truth[f"{role}|Invocation5XXErrors"] = [0.0] * minutes
        truth[f"{role}|ModelLatency:p99"] = list(40_000 * factor * load * np.exp(rng.normal(0, 0.1, minutes)))
    queries = [{"Id": f"m{i}", "Label": label, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/SageMaker", "MetricName": label.split("|")[1].split(":")[0],
                   "Dimensions": [{"Name": "EndpointName", "Value": "churn"},
                                  {"Name": "VariantName", "Value": label.split("|")[0]}]},
        "Period": 60, "Stat": "Sum" if "Latency" not in label else "p99"}} for i, label in enumerate(truth)]
    cloudwatch = RetainingCloudWatch(now, first, truth)
    real = handlers._client
    with mock.patch.object(handlers, "_client", lambda s: cloudwatch if s == "cloudwatch" else real(s)), \
            mock.patch.object(handlers, "_now", lambda: now):
        out = handlers.gather_metrics({"queries": queries, "end": now.isoformat(), "minutes": minutes,
                                       "report_bucket": "reports", "report_prefix": "churn/long"})
        verdict = handlers.judge({"series": out["series"], "criteria": {"sampling_percent": 100}})
    cutoff = "2026-11-16T13:05:00+00:00"  # now - 15 days + the hour's margin, up to 5 minutes
    assert out["periods"] == [{"start": "2026-11-01T12:00:00+00:00", "end": cutoff, "period": 300},
                              {"start": cutoff, "end": "2026-12-01T12:00:00+00:00", "period": 60}]
    old = [r for r in cloudwatch.requests if r["EndTime"].isoformat() == cutoff]
    recent = [r for r in cloudwatch.requests if r["StartTime"].isoformat() == cutoff]
    assert len(old) == len(recent) == 2  # two pages each
    assert {q["MetricStat"]["Period"] for r in old for q in r["MetricDataQueries"]} == {300}
    assert {q["MetricStat"]["Period"] for r in recent for q in r["MetricDataQueries"]} == {60}
    assert all(q["MetricStat"]["Stat"] == o["MetricStat"]["Stat"] for r in old
               for q, o in zip(r["MetricDataQueries"], queries, strict=True))
    stored = json.loads(boto3.client("s3", region_name=REGION).get_object(
        Bucket="reports", Key="churn/long/series.json")["Body"].read())
    old_slots, recent_slots = 21_665 // 5, 21_535
    assert stored["slot_minutes"] == [5] * old_slots + [1] * recent_slots
    assert all(v is not None for v in stored["production"]["ModelLatency:p99"])  # no empty older half
    assert stored["shadow"]["Invocations"][0] == 500.0 and stored["shadow"]["Invocations"][-1] == 100.0
    assert verdict["decision"] == "REJECT" and verdict["minutes"] == minutes


def test_judge_writes_both_reports_and_returns_the_decision(aws):
    production, shadow = simulated_traffic(minutes=30, seed=32, regression=0.3)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket="reports", Key="churn/run-2/series.json", Body=json.dumps({"production": production, "shadow": shadow}))
    out = handlers.judge({"series": "s3://reports/churn/run-2/series.json", "criteria": {"sampling_percent": 50},
                          "context": {"endpoint_name": "churn"}})
    assert out["decision"] == "REJECT" and out["summary"].startswith("REJECT")
    s3 = boto3.client("s3", region_name=REGION)
    markdown = s3.get_object(Bucket="reports", Key="churn/run-2/verdict.md")["Body"].read().decode()
    assert markdown.startswith("# Shadow test verdict: **REJECT**")
    assert json.loads(s3.get_object(Bucket="reports", Key="churn/run-2/verdict.json")["Body"].read())["decision"] == "REJECT"
    assert out["report_markdown"] == "s3://reports/churn/run-2/verdict.md"


def test_prepare_promotion_builds_the_config_from_the_live_one(aws):
    sm, _ = aws
    out = handlers.prepare_update({"endpoint_name": "churn", "action": "promote"})
    assert out["previous_config_name"] == "shadow-config" and not out["already_applied"]
    config = sm.describe_endpoint_config(EndpointConfigName=out["config_name"])
    assert [(v["VariantName"], v["ModelName"], v["InstanceType"]) for v in config["ProductionVariants"]] == \
        [("production", "churn-v2", "ml.m5.xlarge")]
    assert "ShadowProductionVariants" not in config
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://capture/datacapture"


def test_prepare_is_idempotent(aws):
    sm, double = aws
    first = handlers.prepare_update({"endpoint_name": "churn", "action": "remove_shadow"})
    again = handlers.prepare_update({"endpoint_name": "churn", "action": "remove_shadow"})
    assert again["config_name"] == first["config_name"]
    assert sum(1 for op, _ in double.calls if op == "CreateEndpointConfig") == 2  # the fixture's + one
    sm.update_endpoint(EndpointName="churn", EndpointConfigName=first["config_name"])
    sm.describe_endpoint(EndpointName="churn")
    applied = handlers.prepare_update({"endpoint_name": "churn", "action": "remove_shadow"})
    assert applied["already_applied"] and applied["config_name"] == first["config_name"]


def test_prepare_deregisters_autoscaling_the_update_would_trip_and_restore_puts_it_back(aws):
    sm, _ = aws
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    for variant, low, high in (("production", 2, 4), ("shadow", 1, 2)):
        resource = f"endpoint/churn/variant/{variant}"
        scaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIM,
                                         MinCapacity=low, MaxCapacity=high)
        scaling.put_scaling_policy(
            PolicyName=f"{variant}-tracking", ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIM,
            PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 750.0, "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    out = handlers.prepare_update({"endpoint_name": "churn", "action": "promote", "instance_settings": "shadow"})
    assert out["deregistered"] == ["production", "shadow"]
    assert [r["ResourceId"] for r in out["restore"]] == ["endpoint/churn/variant/production"]
    remaining = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert remaining == []
    sm.update_endpoint(EndpointName="churn", EndpointConfigName=out["config_name"])  # no longer refused
    assert [r["ResourceId"] for r in out["rollback"]] == ["endpoint/churn/variant/production",
                                                          "endpoint/churn/variant/shadow"]
    restored = handlers.restore_autoscaling({"targets": out["restore"]})
    assert restored == {"restored": ["endpoint/churn/variant/production"]}
    target, = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    policy, = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert policy["PolicyName"] == "production-tracking"


def test_prepare_rejects_unknown_actions(aws):
    with pytest.raises(ValueError, match=r"action must be 'promote' or 'remove_shadow', got 'delete'"):
        handlers.prepare_update({"endpoint_name": "churn", "action": "delete"})


def test_split_s3_rejects_non_s3_locations():
    with pytest.raises(ValueError, match=r"expected an s3://bucket/key URI, got 'reports/x'"):
        handlers._split_s3("reports/x")


def test_clients_are_made_once_per_service_and_aws_environment(monkeypatch):
    from shadow_runtime import clients

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    first = clients.client("s3")
    assert clients.client("s3") is first and first.meta.region_name == "eu-west-1"
    assert clients.client("sagemaker") is not first
    # Whatever points the code elsewhere gets a client of its own: a region, an endpoint (the emulator's).
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert clients.client("s3").meta.region_name == "us-west-2"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:5055")
    assert clients.client("s3").meta.endpoint_url == "http://localhost:5055"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_REGION")
    assert clients.client("s3") is first
