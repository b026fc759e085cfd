"""PromotionWorkflow's template: tasks retry throttling and are caught, least-privilege roles,
logging and tracing, the end-of-test schedule, and every bad setting rejected."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aws_cdk as cdk
import pytest
from conftest import XGBOOST_URI, actions_of, new_stack, only, policy_statements, template_of

from shadow_constructs import (
    ConfigError,
    DeploymentGuardrails,
    InconclusiveAction,
    PromotionWorkflow,
    ServingModel,
    ShadowEndpoint,
    Variant,
)


def build(**kwargs):
    stack = new_stack()
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1),
                              shadow=Variant(model=v2), sampling_percent=50,
                              deployment=DeploymentGuardrails())
    workflow = PromotionWorkflow(stack, "Promotion", endpoint=endpoint, **kwargs)
    return stack, workflow, template_of(stack)


@pytest.fixture(scope="module")
def default():
    return build(test_end=datetime(2026, 12, 2, 9, 0, tzinfo=UTC), criteria={"latency_tolerance": 0.1})


def definition(template) -> dict:
    body = only(template, "AWS::StepFunctions::StateMachine")["Properties"]["DefinitionString"]
    parts = body["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "x" for p in parts))  # references read as "x"


def test_every_task_retries_throttling_and_is_caught(default):
    _, _, template = default
    states = definition(template)["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert len(tasks) >= 12
    for name, state in tasks.items():
        retry = state["Retry"][0]
        assert "SageMaker.ThrottlingException" in retry["ErrorEquals"] and retry["BackoffRate"] == 2, name
        if name != "ReportFailure":
            assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), name


def test_criteria_and_sampling_share_reach_the_judge(default):
    _, _, template = default
    judge = definition(template)["States"]["Judge"]
    assert judge["Parameters"]["criteria"] == {"sampling_percent": 50, "latency_tolerance": 0.1}


def test_update_uses_the_endpoints_own_guardrails(default):
    _, _, template = default
    update = definition(template)["States"]["PromoteUpdateEndpoint"]
    assert update["Parameters"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == \
        {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}


def test_state_machine_logs_and_traces(default):
    _, _, template = default
    props = only(template, "AWS::StepFunctions::StateMachine")["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"


def test_end_of_test_is_scheduled(default):
    _, _, template = default
    schedule = only(template, "AWS::Scheduler::Schedule")["Properties"]
    assert schedule["ScheduleExpression"] == "at(2026-12-02T09:00:00)"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}


def test_functions_get_only_what_they_need(default):
    stack, workflow, template = default
    gather = policy_statements(template, "PromotionGatherMetricsRole")
    assert {a for s in gather for a in actions_of(s)} == {
        "cloudwatch:GetMetricData", "s3:PutObject", "kms:GenerateDataKey", "kms:Encrypt",
        "logs:CreateLogStream", "logs:PutLogEvents"}
    prepare = policy_statements(template, "PromotionPrepareUpdateRole")
    describe = next(s for s in prepare if actions_of(s) == ["sagemaker:DescribeEndpoint"])
    assert describe["Resource"] == {"Ref": stack.get_logical_id(workflow.endpoint.resource)}
    judge = {a for s in policy_statements(template, "PromotionJudgeRole") for a in actions_of(s)}
    assert "s3:GetObject" in judge and "sagemaker:UpdateEndpoint" not in judge
    runtimes = {f["Properties"]["Runtime"] for f in template.find_resources("AWS::Lambda::Function").values()}
    assert runtimes == {"python3.14"}


def test_instance_override_reaches_the_prepare_step():
    _, _, template = build(instance_override={"InstanceType": "ml.m5.2xlarge", "InitialInstanceCount": 3})
    prepare = definition(template)["States"]["PromotePrepare"]["Parameters"]
    assert (prepare["instance_settings"], prepare["override"]) == \
        ("override", {"InstanceType": "ml.m5.2xlarge", "InitialInstanceCount": 3})


def test_approval_and_inconclusive_choices_shape_the_graph():
    _, _, template = build(require_approval=True, on_inconclusive=InconclusiveAction.REMOVE_SHADOW)
    states = definition(template)["States"]
    assert states["AwaitApproval"]["Resource"].endswith("sns:publish.waitForTaskToken")
    assert states["Decision"]["Default"] == "RemoveShadowPrepare"
    _, _, template = build(on_inconclusive=InconclusiveAction.EXTEND, max_extensions=3)
    states = definition(template)["States"]
    assert states["ExtendAgain?"]["Choices"][0]["NumericLessThan"] == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"window": cdk.Duration.minutes(5)}, r"window must be between 600 and 2592000 seconds, got 300 seconds"),
    ({"criteria": {"tolerance": 1}}, r"criteria keys must be among .*, got \['tolerance'\]"),
    ({"require_approval": "yes"}, r"require_approval must be a bool, got 'yes'"),
    ({"instance_settings": "shadow"}, r"instance_settings must be an InstanceSettings, got 'shadow'"),
    ({"on_inconclusive": "extend"}, r"on_inconclusive must be an InconclusiveAction, got 'extend'"),
    ({"max_extensions": 11}, r"max_extensions must be between 0 and 10, got 11"),
    ({"poll_interval": cdk.Duration.hours(2)}, r"poll_interval must be between 1 and 3600 seconds"),
    ({"retry_interval": cdk.Duration.minutes(10)}, r"retry_interval must be between 1 and 300 seconds"),
    ({"test_end": "tomorrow"}, r"test_end must be a datetime, got 'tomorrow'"),
    ({"topic": "arn:aws:sns:us-east-1:1:t"}, r"topic must be an aws_sns.ITopic"),
    ({"instance_override": {"ModelName": "x"}}, r"instance_override must set some of InstanceType, .*, got \['ModelName'\]"),
    ({"instance_override": {"InstanceType": "big"}}, r"instance_override InstanceType must be a SageMaker instance type"),
    ({"instance_override": {"InitialInstanceCount": 0}}, r"instance_override InitialInstanceCount must be at least 1"),
])
def test_bad_workflow_settings_are_rejected(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build(**kwargs)


def test_workflow_needs_a_shadow_or_a_managed_test():
    stack = new_stack()
    with pytest.raises(ConfigError, match=r"endpoint must have a shadow variant \(or give managed_test\)"):
        PromotionWorkflow(stack, "W", endpoint=ShadowEndpoint.from_endpoint_name(stack, "E", "churn"))
