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
    Criteria,
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


def test_a_criteria_object_gives_the_judge_the_fields_that_differ_from_the_defaults():
    _, workflow, template = build(criteria=Criteria(latency_tolerance=0.1, critical=("ModelLatency:*",)))
    judge = definition(template)["States"]["Judge"]["Parameters"]
    assert judge["criteria"] == {"sampling_percent": 50, "latency_tolerance": 0.1, "critical": ["ModelLatency:*"]}
    assert Criteria.from_mapping(workflow.criteria).latency_tolerance == 0.1  # the judge reads it back


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
        "cloudwatch:GetMetricData", "s3:PutObject", "kms:GenerateDataKey", "logs:CreateLogStream", "logs:PutLogEvents"}
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
    ({"window": cdk.Duration.minutes(5)}, r"window must be between 10 minutes and 30 days, got 5 minutes"),
    ({"criteria": {"tolerance": 1}}, r"criteria: unknown keys \['tolerance'\]; known keys: \[.*'latency_tolerance'"),
    # Every field's type and range is checked by the judge's own Criteria at synth, not after the test window.
    ({"criteria": {"confidence": 5}}, r"criteria: confidence must be a number between 0.5 and 0.9999, got 5"),
    ({"criteria": {"pass_score": "high"}}, r"criteria: pass_score must be a number between 0 and 100, got 'high'"),
    ({"criteria": {"critical": ["Latency:p99"]}}, r"criteria: critical: .*Latency"),
    ({"criteria": {"weights": {"ModelLatency:p50": -1}}}, r"criteria: weights\['ModelLatency:p50'\] must be a number >= 0"),
    ({"criteria": {"sampling_percent": 0}}, r"criteria: .*sampling_percent must be a number between 1 and 100, got 0"),
    ({"criteria": "strict"}, r"criteria must be a Criteria or a mapping of its fields, got 'strict'"),
    ({"require_approval": "yes"}, r"require_approval must be a bool, got 'yes'"),
    ({"instance_settings": "shadow"}, r"instance_settings must be an InstanceSettings, got 'shadow'"),
    ({"on_inconclusive": "extend"}, r"on_inconclusive must be an InconclusiveAction, got 'extend'"),
    ({"max_extensions": 11}, r"max_extensions must be between 0 and 10, got 11"),
    ({"poll_interval": cdk.Duration.hours(2)}, r"poll_interval must be between 1 second and 1 hour, got 2 hours"),
    ({"retry_interval": cdk.Duration.minutes(10)}, r"retry_interval must be between 1 second and 5 minutes, got 10 minutes"),
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
    with pytest.raises(ConfigError, match=r"endpoint 'Test/E' has no shadow variant: import it with .*shadow_variant_name=...\) "
                                          r"\(or give managed_test\)"):
        PromotionWorkflow(stack, "W", endpoint=ShadowEndpoint.from_endpoint_name(stack, "E", "churn"))


def build_with_analytics(nag: bool = False, **kwargs):
    from shadow_constructs import CaptureAnalytics, DataCapture

    stack = new_stack()
    if nag:
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(stack.node.root).add_plugins(AwsSolutionsChecks(stack.node.root))
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1),
                              shadow=Variant(model=v2), sampling_percent=50, data_capture=DataCapture(),
                              deployment=DeploymentGuardrails())
    analytics = CaptureAnalytics(stack, "Analytics", endpoint=endpoint)
    workflow = PromotionWorkflow(stack, "Promotion", endpoint=endpoint,
                                 **{"criteria": {"min_agreement": 0.95}, "capture_analytics": analytics, **kwargs})
    return stack, workflow, analytics


@pytest.fixture(scope="module")
def with_agreement():
    stack, workflow, analytics = build_with_analytics()
    return stack, workflow, analytics, template_of(stack)


def test_agreement_is_measured_between_gathering_and_judging(with_agreement):
    stack, _, analytics, template = with_agreement
    states = definition(template)["States"]
    assert states["GatherMetrics"]["Next"] == "MeasureAgreement" and states["MeasureAgreement"]["Next"] == "Judge"
    payload = states["MeasureAgreement"]["Parameters"]
    assert payload["query"] == analytics.query_strings["label-agreement"]
    assert payload["start.$"] == "$.gathered.start" and payload["end.$"] == "$.gathered.end"
    assert states["MeasureAgreement"]["ResultPath"] == "$.agreement"
    judge = states["Judge"]["Parameters"]
    assert judge["agreement.$"] == "$.agreement" and judge["criteria"]["min_agreement"] == 0.95
    assert any("States.ALL" in c["ErrorEquals"] for c in states["MeasureAgreement"]["Catch"])


def test_the_agreement_function_may_only_query_the_analytics_workgroup(with_agreement):
    _, _, _, template = with_agreement
    statements = policy_statements(template, "PromotionMeasureAgreementRole")
    actions = {a for s in statements for a in actions_of(s)}
    assert {"athena:StartQueryExecution", "athena:GetQueryResults", "glue:GetTable", "s3:GetObject"} <= actions
    assert not any(a.startswith(("sagemaker:", "s3:Delete", "athena:Delete")) for a in actions)
    athena_statement = next(s for s in statements if "athena:StartQueryExecution" in actions_of(s))
    assert "workgroup/" in json.dumps(athena_statement["Resource"])


def test_the_agreement_step_is_cdk_nag_clean():
    from conftest import nag_violations

    stack, _, _ = build_with_analytics(nag=True)
    assert nag_violations(stack.node.root) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"criteria": {}}, r"capture_analytics measures the prediction agreement, so criteria must set min_agreement"),
    ({"capture_analytics": "athena"}, r"capture_analytics must be a CaptureAnalytics, got 'athena'"),
])
def test_agreement_settings_must_go_together(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_with_analytics(**kwargs)


def test_min_agreement_without_analytics_is_rejected():
    with pytest.raises(ConfigError, match=r"criteria min_agreement \(0.9\) is measured on the captured data: "
                                          r"give capture_analytics"):
        build(criteria={"min_agreement": 0.9})
