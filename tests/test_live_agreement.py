"""Live prediction agreement (issue 14, part 3): what the workflow publishes at each look, and where it shows.

The publication itself, with the values the verdict judged, is executed in test_workflow_execution.py
(test_answers_that_disagree_reject_a_shadow_with_healthy_metrics)."""

from __future__ import annotations

from datetime import UTC, datetime

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk import aws_s3 as s3
from botocore.validate import ParamValidator
from conftest import new_stack, policy_statements, template_of
from shadow_runtime import agreement_metrics

from app import build_app
from shadow_constructs import (
    CaptureAnalytics,
    ConfigError,
    PromotionWorkflow,
    ShadowAlarms,
    ShadowDashboard,
    ShadowEndpoint,
    ShadowMetricFactory,
)

DIMENSIONS = [{"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": "shadow"}]


def test_the_metric_data_is_a_valid_put_metric_data_request():
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    data = agreement_metrics.metric_data({"agreement": 0.9375, "predictions": 1600, "mean_abs_diff": 0.0123},
                                         endpoint_name="churn", variant_name="shadow", timestamp=at)
    shape = botocore.session.get_session().get_service_model("cloudwatch").operation_model("PutMetricData").input_shape
    report = ParamValidator().validate({"Namespace": agreement_metrics.NAMESPACE, "MetricData": data}, shape)
    assert not report.has_errors(), report.generate_report()
    assert [(d["MetricName"], d["Value"], d["Unit"]) for d in data] == [
        ("PairedPredictions", 1600.0, "Count"), ("PredictionAgreement", 93.75, "Percent"),
        ("PredictionMeanAbsDifference", 0.0123, "None")]
    assert all(d["Dimensions"] == DIMENSIONS and d["Timestamp"] == at for d in data)
    # Nothing measured: only the count (0), no figure made up.
    empty = agreement_metrics.metric_data({"agreement": None, "predictions": 0, "mean_abs_diff": None},
                                          endpoint_name="churn", variant_name="shadow", timestamp=at)
    assert [(d["MetricName"], d["Value"]) for d in empty] == [("PairedPredictions", 0.0)]


@pytest.fixture(scope="module")
def stack() -> cdk.Stack:
    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_attributes(
        stack, "Endpoint", endpoint_name="churn", shadow_variant_name="shadow", sampling_percent=50,
        capture_bucket=s3.Bucket.from_bucket_name(stack, "Capture", "capture"), capture_prefix="datacapture")
    analytics = CaptureAnalytics(stack, "Analytics", endpoint=endpoint)
    PromotionWorkflow(stack, "Promotion", endpoint=endpoint, capture_analytics=analytics,
                      criteria={"min_agreement": 0.95})
    ShadowDashboard(stack, "Dashboard", endpoint=endpoint)
    ShadowAlarms(stack, "Alarms", endpoint=endpoint, min_agreement=0.95)
    return stack


def test_each_look_publishes_to_its_own_namespace_only(stack):
    template = template_of(stack)
    from test_promotion_workflow import definition

    assert "MeasureAgreement" in definition(template)["States"]  # a state the timer may stop in (looks.STOPPABLE_STATES)
    statements = [s for s in policy_statements(template, "PromotionMeasureAgreementRole")
                  if s["Action"] == "cloudwatch:PutMetricData"]
    assert statements == [{"Action": "cloudwatch:PutMetricData", "Effect": "Allow", "Resource": "*",
                           "Condition": {"StringEquals": {"cloudwatch:namespace": agreement_metrics.NAMESPACE}}}]


def test_the_dashboard_shows_agreement_and_mean_difference(stack):
    dashboard = next(iter(template_of(stack).find_resources("AWS::CloudWatch::Dashboard").values()))
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = "".join(p if isinstance(p, str) else "x" for p in parts)
    for name in ("PredictionAgreement", "PredictionMeanAbsDifference", "PairedPredictions"):
        assert f'["{agreement_metrics.NAMESPACE}","{name}","EndpointName","churn","VariantName","shadow"' in body, name


def test_a_dashboard_of_an_endpoint_without_capture_has_no_agreement_graphs():
    stack = new_stack()
    ShadowDashboard(stack, "Dashboard", endpoint=ShadowEndpoint.from_endpoint_name(
        stack, "E", "churn", shadow_variant_name="shadow"))
    assert "PredictionAgreement" not in str(template_of(stack).find_resources("AWS::CloudWatch::Dashboard"))


def test_an_alarm_below_the_minimum_agreement_joins_the_composite_not_the_rollback(stack):
    template = template_of(stack)
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    agreement = next(a["Properties"] for a in alarms.values()
                     if a["Properties"]["AlarmName"].endswith("-agreement-below-minimum"))
    assert (agreement["Threshold"], agreement["ComparisonOperator"], agreement["EvaluationPeriods"],
            agreement["TreatMissingData"]) == (95, "LessThanThreshold", 1, "notBreaching")
    (query,) = agreement["Metrics"]
    stat = query["MetricStat"]
    assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"], stat["Stat"], stat["Period"]) == (
        agreement_metrics.NAMESPACE, "PredictionAgreement", "Minimum", 3600)
    assert sorted((d["Name"], d["Value"]) for d in stat["Metric"]["Dimensions"]) == [
        ("EndpointName", "churn"), ("VariantName", "shadow")]
    composite = next(iter(template.find_resources("AWS::CloudWatch::CompositeAlarm").values()))
    assert "AlarmsAgreementBelowMinimum" in str(composite["Properties"]["AlarmRule"])
    alarms_construct = next(c for c in stack.node.children if isinstance(c, ShadowAlarms))
    assert alarms_construct.agreement_alarm is not None
    assert alarms_construct.agreement_alarm not in alarms_construct.rollback_alarms


def test_the_agreement_is_published_at_least_hourly():
    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_attributes(
        stack, "Endpoint", endpoint_name="churn", shadow_variant_name="shadow",
        capture_bucket=s3.Bucket.from_bucket_name(stack, "Capture", "capture"), capture_prefix="datacapture")
    analytics = CaptureAnalytics(stack, "Analytics", endpoint=endpoint)
    with pytest.raises(ConfigError, match=r"look_interval \(7200 s\) must be at most 3600 s with capture_analytics"):
        PromotionWorkflow(stack, "Promotion", endpoint=endpoint, capture_analytics=analytics,
                          criteria={"min_agreement": 0.95}, look_interval=cdk.Duration.hours(2))


@pytest.mark.parametrize("value", [0, 1.5, "high"])
def test_a_bad_minimum_agreement_is_refused(value):
    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "E", "churn", shadow_variant_name="shadow")
    with pytest.raises(ConfigError, match=r"min_agreement"):
        ShadowAlarms(stack, "Alarms", endpoint=endpoint, min_agreement=value)


def test_only_the_agreement_metrics_are_made_as_such():
    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "E", "churn", shadow_variant_name="shadow")
    with pytest.raises(ConfigError, match=r"agreement metric must be one of PredictionAgreement, "
                                          r"PredictionMeanAbsDifference, PairedPredictions, got 'ModelLatency'"):
        ShadowMetricFactory(endpoint).agreement_metric("ModelLatency")


def test_the_example_app_alarms_below_its_scenarios_minimum_agreement():
    app = build_app(cdk.App(context={"nag": "false", "shadow-test-config": "scenarios/healthy.json"}))
    stack = app.node.find_child("ChurnShadowTest")
    alarms = template_of(stack).find_resources("AWS::CloudWatch::Alarm")
    (agreement,) = [a["Properties"] for a in alarms.values()
                    if a["Properties"]["AlarmName"].endswith("-agreement-below-minimum")]
    assert agreement["Threshold"] == 85  # the scenario's min_agreement 0.85, in percent


def test_without_a_minimum_there_is_no_agreement_alarm():
    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "E", "churn", shadow_variant_name="shadow")
    alarms = ShadowAlarms(stack, "Alarms", endpoint=endpoint)
    assert alarms.agreement_alarm is None
    assert "PredictionAgreement" not in str(template_of(stack).find_resources("AWS::CloudWatch::Alarm"))

