"""Workflow logic: aligning GetMetricData results, building promoted / shadow-free configs, the report."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import botocore.session
import pytest
from botocore.validate import ParamValidator
from conftest import simulated_traffic
from moto.sagemaker.exceptions import ValidationError
from shadow_runtime import promotion, report, series
from shadow_runtime.verdict import compare

from shadow_emulator import validate_request

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def valid(operation: str, params: dict) -> None:
    result = ParamValidator().validate(params, SAGEMAKER.operation_model(operation).input_shape)
    assert not result.has_errors(), result.generate_report()


LIVE = {  # a DescribeEndpointConfig response (the members CreateEndpointConfig also takes)
    "EndpointConfigName": "churn-config-1",
    "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/churn-config-1",
    "ProductionVariants": [{"VariantName": "production", "ModelName": "churn-v1", "InitialInstanceCount": 2,
                            "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 1.0, "VolumeSizeInGB": 30,
                            "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}],
    "ShadowProductionVariants": [{"VariantName": "shadow", "ModelName": "churn-v2", "InitialInstanceCount": 1,
                                  "InstanceType": "ml.c5.2xlarge", "InitialVariantWeight": 0.5}],
    "DataCaptureConfig": {"EnableCapture": True, "InitialSamplingPercentage": 100,
                          "DestinationS3Uri": "s3://capture-1/datacapture",
                          "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/abc",
                          "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                          "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}},
    "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/def",
    "CreationTime": START,
}


def test_promoted_config_moves_the_shadow_model_into_production():
    request = promotion.promoted_config(LIVE, "churn-promote-1")
    valid("CreateEndpointConfig", request)
    variant, = request["ProductionVariants"]
    assert (variant["VariantName"], variant["ModelName"]) == ("production", "churn-v2")
    assert (variant["InstanceType"], variant["InitialInstanceCount"], variant["VolumeSizeInGB"]) == ("ml.m5.xlarge", 2, 30)
    assert "ShadowProductionVariants" not in request
    assert request["DataCaptureConfig"] == LIVE["DataCaptureConfig"] and request["KmsKeyId"] == LIVE["KmsKeyId"]


def test_promoted_config_can_take_the_shadows_instances_or_an_override():
    shadow = promotion.promoted_config(LIVE, "n", "shadow")["ProductionVariants"][0]
    assert (shadow["InstanceType"], shadow["InitialInstanceCount"]) == ("ml.c5.2xlarge", 1)
    assert "VolumeSizeInGB" not in shadow and "RoutingConfig" not in shadow
    override = promotion.promoted_config(LIVE, "n", "override", {"InstanceType": "ml.m5.2xlarge",
                                                                 "InitialInstanceCount": 3})["ProductionVariants"][0]
    assert (override["InstanceType"], override["InitialInstanceCount"], override["VolumeSizeInGB"]) == \
        ("ml.m5.2xlarge", 3, 30)
    valid("CreateEndpointConfig", promotion.promoted_config(LIVE, "n", "shadow"))


def test_shadow_removed_config_keeps_production_untouched():
    request = promotion.shadow_removed_config(LIVE, "churn-remove-1")
    valid("CreateEndpointConfig", request)
    assert request["ProductionVariants"] == LIVE["ProductionVariants"]
    assert "ShadowProductionVariants" not in request


@pytest.mark.parametrize(("call", "message"), [
    (lambda: promotion.promoted_config({**LIVE, "ShadowProductionVariants": []}, "n"),
     r"ShadowProductionVariants must hold exactly one variant .*, got 0"),
    (lambda: promotion.promoted_config(LIVE, "n", "biggest"), r"instance_settings must be one of production, shadow, override"),
    (lambda: promotion.promoted_config(LIVE, "n", "override", {"ModelName": "x"}), r"override must set instance settings"),
    (lambda: promotion.promoted_config(LIVE, "n", "override"), r"override must set instance settings"),
])
def test_promotion_rejects_what_it_cannot_do(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_config_names_are_deterministic_and_valid():
    name = promotion.config_name("churn-shadow-test", "promote", "execution-1")
    assert name == promotion.config_name("churn-shadow-test", "promote", "execution-1")
    assert name != promotion.config_name("churn-shadow-test", "promote", "execution-2")
    long = promotion.config_name("x" * 63, "remove_shadow", "e")
    assert len(long) <= 63 and "-remove-shadow-" in long
    odd = promotion.config_name("churn_test--", "remove_shadow", "e")
    for candidate in (name, long, odd):
        # botocore's pattern for EndpointConfigName, as SageMaker checks it (the double does too)
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", candidate), candidate
        valid("DescribeEndpointConfig", {"EndpointConfigName": candidate})
        validate_request("CreateEndpointConfig", {"EndpointConfigName": candidate, "ProductionVariants": [
            {"VariantName": "production", "ModelName": "churn-v1"}]})


def test_the_double_checks_name_patterns_like_sagemaker():
    with pytest.raises(ValidationError, match=r"EndpointConfigName must match"):
        validate_request("DescribeEndpointConfig", {"EndpointConfigName": "churn-remove_shadow-1"})


def test_autoscaling_changes_for_removed_and_retyped_variants():
    registered = {"production": {"MinCapacity": 2, "MaxCapacity": 4}, "shadow": {"MinCapacity": 1, "MaxCapacity": 2}}
    same = promotion.promoted_config(LIVE, "n")
    assert promotion.autoscaling_changes(LIVE, same, registered) == (["shadow"], [])
    retyped = promotion.promoted_config(LIVE, "n", "shadow")
    assert promotion.autoscaling_changes(LIVE, retyped, registered) == (["production", "shadow"], ["production"])
    assert promotion.autoscaling_changes(LIVE, same, {}) == ([], [])


def metric_data_results():
    production, shadow = simulated_traffic(minutes=30, seed=21)
    results = []
    for role, data in (("production", production), ("shadow", shadow)):
        for key, values in data.items():
            stamps = [datetime.fromtimestamp(START.timestamp() + 60 * i, tz=UTC) for i in range(len(values))]
            pairs = [(s, v) for s, v in zip(stamps, values, strict=True) if v is not None]
            pairs = pairs[::-1]  # GetMetricData's default order: newest first
            results.append({"Id": f"m_{role}_{len(results)}", "Label": f"{role}|{key}",
                            "Timestamps": [s for s, _ in pairs], "Values": [v for _, v in pairs], "StatusCode": "Complete"})
    return production, shadow, results


def test_align_rebuilds_the_per_minute_series_from_metric_data():
    production, shadow, results = metric_data_results()
    start, end = series.window("2026-11-25T09:30:30Z", 30)
    assert (start, end) == (START, datetime(2026, 11, 25, 9, 30, tzinfo=UTC))
    aligned_p, aligned_s = series.align(results, start, end)
    assert aligned_p["ModelLatency:p99"] == production["ModelLatency:p99"]
    assert aligned_s["Invocations"] == [float(v) for v in shadow["Invocations"]]


def test_align_merges_pages_and_marks_missing_minutes():
    _, _, results = metric_data_results()
    first = next(r for r in results if r["Label"] == "production|Invocations")
    second = {**first, "Timestamps": first["Timestamps"][:5], "Values": first["Values"][:5]}
    first_page = {**first, "Timestamps": first["Timestamps"][10:], "Values": first["Values"][10:]}
    others = [r for r in results if r is not first]
    aligned_p, _ = series.align([first_page, second, *others], START, "2026-11-25T09:30:00Z")
    invocations = aligned_p["Invocations"]
    assert invocations[-5:] == [float(v) for v in reversed(first["Values"][:5])]
    assert invocations[20:25] == [None] * 5  # minutes no page returned


@pytest.mark.parametrize(("results", "message"), [
    ([{"Id": "a", "Label": "canary|Invocations", "Timestamps": [], "Values": []}], r"expected '<production\|shadow>\|<key>'"),
    ([{"Id": "a", "Label": "production|Invocations", "Timestamps": [], "Values": []}], r"missing a side: \['Invocations'\]"),
])
def test_align_rejects_unusable_results(results, message):
    with pytest.raises(ValueError, match=message):
        series.align(results, START, "2026-11-25T10:00:00Z")


def test_window_needs_positive_minutes():
    with pytest.raises(ValueError, match=r"minutes must be a positive integer, got 0"):
        series.window(START, 0)


def test_reports_say_the_decision_and_every_metric():
    production, shadow = simulated_traffic(minutes=30, seed=22, regression=0.3)
    verdict = compare(production, shadow, {"sampling_percent": 50})
    context = {"endpoint_name": "churn", "production_variant": "production", "shadow_variant": "shadow",
               "start": "2026-11-25T09:00:00Z", "end": "2026-11-25T09:30:00Z"}
    markdown = report.report_markdown(verdict, context)
    assert markdown.startswith("# Shadow test verdict: **REJECT**")
    assert "| **ModelLatency:p99** (critical) | higher |" in markdown
    assert "Endpoint: `churn`" in markdown and "## Why" in markdown
    data = json.loads(report.report_json(verdict, context))
    assert data["decision"] == "REJECT" and data["context"]["endpoint_name"] == "churn"
    assert set(data["metrics"]) >= {"ModelLatency:p99", "Invocation5XXErrors"}
