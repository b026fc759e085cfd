"""ShadowAlarms: each regression alarm, its traffic guard, the composite, actions, and rollback use."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns
from conftest import XGBOOST_URI, cfn_lint_findings, new_stack, only, policy_statements, template_of

from shadow_constructs import ConfigError, DeploymentGuardrails, ServingModel, ShadowAlarms, ShadowEndpoint, Variant


@pytest.fixture(scope="module")
def guarded():
    """Alarms handed to the same endpoint's guardrails, with an SNS topic."""
    stack = new_stack()
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1, instance_count=2),
                              shadow=Variant(model=v2), sampling_percent=50, deployment=DeploymentGuardrails())
    topic = sns.Topic(stack, "Topic")
    alarms = ShadowAlarms(stack, "Alarms", endpoint=endpoint, topic=topic, latency_ratio_threshold=1.25)
    for alarm in alarms.rollback_alarms:
        endpoint.add_rollback_alarm(alarm)
    return stack, alarms, template_of(stack)


def alarm_named(template, suffix):
    return next(a["Properties"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()
                if a["Properties"]["AlarmName"].endswith(suffix))


def expression_of(alarm):
    return next(m["Expression"] for m in alarm["Metrics"] if m.get("ReturnData", True) and "Expression" in m)


def test_latency_ratio_alarm_is_guarded_by_shadow_traffic(guarded):
    _, _, template = guarded
    alarm = alarm_named(template, "-latency-ratio")
    assert expression_of(alarm) == "IF(FILL(invocations_shadow_sum, 0) >= 50, ls / lp, 0)"
    stats = {m["Id"]: m["MetricStat"]["Stat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert stats == {"ls": "p99", "lp": "p99", "invocations_shadow_sum": "Sum"}
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1.25, "GreaterThanThreshold")
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["TreatMissingData"]) == (3, 3, "notBreaching")
    assert {m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m} == {300}


def test_error_rate_alarm_compares_rates_not_counts(guarded):
    _, _, template = guarded
    alarm = alarm_named(template, "-error-rate-increase")
    expressions = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
    assert "IF(FILL(invocations_shadow_sum, 0) >= 50, delta, 0)" in expressions
    assert any(e.startswith("IF(invocations_shadow_sum > 0, 100 * (FILL(invocation5xxerrors_shadow_sum, 0)") for e in expressions)
    assert len(alarm["Metrics"]) <= 10  # CloudWatch's limit for an alarm
    assert alarm["Threshold"] == 1.0


def test_model_errors_alarm_counts_shadow_model_errors(guarded):
    _, _, template = guarded
    alarm = alarm_named(template, "-shadow-model-errors")
    assert expression_of(alarm) == "IF(FILL(invocations_shadow_sum, 0) >= 50, FILL(me, 0), 0)"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (5, "GreaterThanOrEqualToThreshold")


def test_composite_fires_on_any_regression_and_everything_notifies_the_topic(guarded):
    stack, alarms, template = guarded
    composite = only(template, "AWS::CloudWatch::CompositeAlarm")["Properties"]
    rule = json.dumps(composite["AlarmRule"])
    assert rule.count("ALARM(") == 3 and " OR " in rule
    topic_id = next(iter(template.find_resources("AWS::SNS::Topic")))
    for alarm in [*template.find_resources("AWS::CloudWatch::Alarm").values(),
                  *template.find_resources("AWS::CloudWatch::CompositeAlarm").values()]:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]


def test_alarms_guard_the_endpoint_updates_without_a_cycle(guarded):
    stack, alarms, template = guarded
    endpoint = only(template, "AWS::SageMaker::Endpoint")
    names = [a["AlarmName"] for a in endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert names == [a.node.default_child.alarm_name for a in alarms.rollback_alarms]
    assert sorted(endpoint["DependsOn"]) == sorted(stack.get_logical_id(a.node.default_child) for a in alarms.alarms)
    described = [r for s in policy_statements(template, "V1") if s["Action"] == "cloudwatch:DescribeAlarms"
                 for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert sorted(r["Fn::Join"][1][-1] for r in described) == sorted(f":alarm:{n}" for n in names)
    assert cfn_lint_findings(json.dumps(template.to_json())) == []


def test_imported_endpoint_alarms():
    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "E", "churn-prod", shadow_variant_name="candidate")
    alarms = ShadowAlarms(stack, "Alarms", endpoint=endpoint, latency_statistic="p90", period=cdk.Duration.minutes(1),
                          evaluation_periods=5, datapoints_to_alarm=3, alarm_name_prefix="churn")
    template = template_of(stack)
    alarm = alarm_named(template, "churn-latency-ratio")
    dims = {d["Name"]: d["Value"] for m in alarm["Metrics"] if "MetricStat" in m
            for d in m["MetricStat"]["Metric"]["Dimensions"]}
    assert dims["EndpointName"] == "churn-prod"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (5, 3)
    assert alarms.composite.node.default_child.alarm_name == "churn-shadow-regressed"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"latency_statistic": "median"}, r"latency_statistic must be 'Average' or a percentile like 'p99', got 'median'"),
    ({"latency_ratio_threshold": 0.9}, r"latency_ratio_threshold must be above 1 .*, got 0.9"),
    ({"error_rate_increase_threshold": 0}, r"error_rate_increase_threshold must be between 0.001 and 100, got 0"),
    ({"model_errors_threshold": 0}, r"model_errors_threshold must be at least 1, got 0"),
    ({"min_shadow_invocations": 0}, r"min_shadow_invocations must be at least 1, got 0"),
    ({"period": cdk.Duration.seconds(30)}, r"period must be between 1 minute and 1 day, got 30 seconds"),
    ({"evaluation_periods": 2, "datapoints_to_alarm": 3}, r"datapoints_to_alarm must not exceed evaluation_periods \(2\), got 3"),
    ({"topic": "arn:aws:sns:us-east-1:1:t"}, r"topic must be an aws_sns.ITopic"),
    ({"alarm_name_prefix": "bad prefix"}, r"alarm_name_prefix must be 1-200 letters"),
])
def test_alarm_settings_are_validated(kwargs, message):
    stack = new_stack()
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "E", "churn", shadow_variant_name="shadow")
    with pytest.raises(ConfigError, match=message):
        ShadowAlarms(stack, "A", endpoint=endpoint, **kwargs)


def test_alarms_need_a_shadow():
    stack = new_stack()
    with pytest.raises(ConfigError, match=r"ShadowAlarms 'Test/A': endpoint 'Test/E' has no shadow variant"):
        ShadowAlarms(stack, "A", endpoint=ShadowEndpoint.from_endpoint_name(stack, "E", "churn"))
