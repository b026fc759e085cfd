"""The workflow's Lambda handlers against moto (S3, auto scaling), the SageMaker double, and a
botocore Stubber for GetMetricData (moto's crashes on percentile statistics)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber
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
        with mock.patch.object(handlers, "_client", lambda s: cloudwatch if s == "cloudwatch" else real(s)):
            out = handlers.gather_metrics({"queries": queries, "end": "2026-11-25T09:30:20Z", "minutes": 30,
                                           "report_bucket": "reports", "report_prefix": "churn/run-1"})
        stub.assert_no_pending_responses()
    assert out == {"start": "2026-11-25T09:00:00+00:00", "end": "2026-11-25T09:30:00+00:00",
                   "series": "s3://reports/churn/run-1/series.json", "minutes": 30}
    stored = json.loads(boto3.client("s3", region_name=REGION).get_object(
        Bucket="reports", Key="churn/run-1/series.json")["Body"].read())
    assert stored["production"]["ModelLatency:p99"] == production["ModelLatency:p99"]
    assert stored["shadow"]["Invocations"] == [float(v) for v in shadow["Invocations"]]


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
