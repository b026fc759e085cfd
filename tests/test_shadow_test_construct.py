"""ShadowTest and phases that carry: the same app code deploys every phase (``-c shadow-phase=...``), and the parts
used alone say what to change when their endpoint has no shadow."""

from __future__ import annotations

import json
import tempfile

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from conftest import XGBOOST_URI, nag_violations, new_stack, only, resources_of

from shadow_constructs import (
    CapacitySize,
    ConfigError,
    DataCapture,
    DeploymentGuardrails,
    InconclusiveAction,
    PromotionWorkflow,
    ServingModel,
    ShadowAlarms,
    ShadowDashboard,
    ShadowEndpoint,
    ShadowTest,
    TestPhase,
    TrafficRouting,
    Variant,
)


def churn_app(context: dict | None = None, *, nag: bool = False, **test_options) -> tuple[cdk.Stack, ShadowTest]:
    """The same app code for every phase: only the context differs (cdk deploy -c shadow-phase=...)."""
    app = cdk.App(outdir=tempfile.mkdtemp(prefix="cdkout-"), context=context or {})
    if nag:
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Churn")
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(
        stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1, instance_count=2),
        shadow=Variant(model=v2), sampling_percent=50, data_capture=DataCapture(),
        deployment=DeploymentGuardrails(traffic_routing=TrafficRouting.canary(CapacitySize.percent(50))))
    test = ShadowTest(stack, "Test", endpoint=endpoint, criteria={"min_agreement": 0.9}, **test_options)
    return stack, test


@pytest.fixture(scope="module")
def phases() -> dict[str, tuple[ShadowTest, assertions.Template]]:
    built = {}
    for name, context in (("shadow", None), ("promoted", {"shadow-phase": "promoted"}),
                          ("rolled_back", {"shadow-phase": "ROLLED_BACK"})):
        stack, test = churn_app(context)
        built[name] = (test, assertions.Template.from_stack(stack))
    return built


def test_the_shadow_phase_wires_alarms_dashboard_analytics_and_the_self_ending_workflow(phases):
    test, template = phases["shadow"]
    assert test.phase is TestPhase.SHADOW and test.endpoint.phase is TestPhase.SHADOW
    assert test.alarms is not None and test.analytics is not None and test.workflow is not None
    assert test.dashboard.comparing
    config = only(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert [v["VariantName"] for v in config["ShadowProductionVariants"]] == ["shadow"]
    # The alarms guard updates: the endpoint's deployment config names them.
    rollback = only(template, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]
    assert len(rollback["Alarms"]) == len(test.alarms.rollback_alarms) == 3
    # min_agreement: the workflow measures the agreement, and an alarm watches it.
    assert test.alarms.agreement_alarm is not None
    definition = json.dumps(only(template, "AWS::StepFunctions::StateMachine")["Properties"]["DefinitionString"])
    assert "MeasureAgreement" in definition
    # The test ends itself (7 days by default) and, undecided in the end, stops costing.
    assert only(template, "Custom::ShadowTestEnd")["Properties"]["DurationSeconds"] == 7 * 86400
    assert test.workflow.undecided is InconclusiveAction.REMOVE_SHADOW
    assert "KeptAsIs" not in definition


def test_the_alarms_notify_the_workflows_topic_which_lets_cloudwatch_publish_and_encrypt(phases):
    test, template = phases["shadow"]
    topic = next(k for k, r in template.to_json()["Resources"].items() if r["Type"] == "AWS::SNS::Topic")
    for alarm in [*resources_of(template, "AWS::CloudWatch::Alarm").values(),
                  *resources_of(template, "AWS::CloudWatch::CompositeAlarm").values()]:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}] == alarm["Properties"]["OKActions"]
    published = [s for p in resources_of(template, "AWS::SNS::TopicPolicy").values()
                 for s in p["Properties"]["PolicyDocument"]["Statement"]
                 if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in published] == [("Allow", "sns:Publish", {"Ref": topic})]
    key = next(r for k, r in template.to_json()["Resources"].items()
               if r["Type"] == "AWS::KMS::Key" and k.startswith("TestPromotionTopicKey"))
    encrypts = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert [sorted(s["Action"]) for s in encrypts] == [["kms:Decrypt", "kms:GenerateDataKey*"]]
    assert all("aws:SourceAccount" in s["Condition"]["StringEquals"] for s in published + encrypts)


@pytest.mark.parametrize("phase", ["promoted", "rolled_back"])
def test_a_later_phase_keeps_a_production_only_dashboard_and_nothing_that_watches_a_shadow(phases, phase):
    test, template = phases[phase]
    assert test.phase is TestPhase[phase.upper()]
    assert test.alarms is None and test.analytics is None and test.workflow is None
    assert not test.dashboard.comparing
    for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm", "AWS::StepFunctions::StateMachine",
                 "Custom::ShadowTestEnd", "AWS::Glue::Table", "AWS::Athena::WorkGroup"):
        assert resources_of(template, kind) == {}, kind
    config = only(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "ShadowProductionVariants" not in config and len(config["ProductionVariants"]) == 1
    body = json.dumps(only(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    assert '\\"production\\"' in body and '\\"shadow\\"' not in body and "Shadow - production" not in body
    assert f"({phase.upper()} phase)" in body
    # Marked for shadow-test status, which prints its name and console link and what it shows.
    mark = only(template, "AWS::CloudWatch::Dashboard")["Metadata"]["shadow-constructs"]
    assert mark == {"role": "dashboard", "endpoint": "Churn/Endpoint", "comparing": False}
    # The models are still declared (PROMOTED serves the candidate in the production variant).
    models = json.dumps(config["ProductionVariants"][0]["ModelName"])
    assert ("V2" in models) == (phase == "promoted")


def test_the_shadow_phase_is_cdk_nag_clean():
    stack, _ = churn_app(nag=True)
    assert nag_violations(stack.node.root) == []


def test_a_phase_context_value_that_is_no_phase_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"ShadowEndpoint 'Churn/Endpoint'.*phase from the context 'shadow-phase' "
                                          r"must be one of shadow, promoted, rolled_back \(cdk deploy -c "
                                          r"shadow-phase=promoted\), got 'promote'"):
        churn_app({"shadow-phase": "promote"})
    app = cdk.App(context={"shadow-phase": "rolled_back"})
    assert TestPhase.from_context(app) is TestPhase.ROLLED_BACK
    assert TestPhase.from_context(cdk.App()) is TestPhase.SHADOW
    with pytest.raises(ConfigError, match=r"context 'stage-phase' must be one of .* got 3"):
        TestPhase.from_context(cdk.App(context={"stage-phase": 3}), key="stage-phase")


def promoted_endpoint(stack: cdk.Stack) -> ShadowEndpoint:
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    return ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1), shadow=Variant(model=v2),
                          phase=TestPhase.PROMOTED)


@pytest.mark.parametrize("construct", [ShadowAlarms, PromotionWorkflow])
def test_a_part_used_alone_outside_the_shadow_phase_names_itself_and_what_to_change(construct):
    stack = new_stack()
    endpoint = promoted_endpoint(stack)
    with pytest.raises(ConfigError) as raised:
        construct(stack, "Part", endpoint=endpoint)
    message = str(raised.value)
    assert message.startswith(f"{construct.__name__} 'Test/Part'")
    assert "endpoint 'Test/Endpoint' renders its PROMOTED phase, which runs no shadow" in message
    assert "TestPhase.SHADOW" in message and "use ShadowTest" in message
    assert "ShadowMetricFactory" not in message and "shadow_variant_name" not in message


def test_a_part_on_an_endpoint_declared_without_a_shadow_says_to_give_it_one():
    stack = new_stack()
    alone = ShadowEndpoint(stack, "Endpoint", production=Variant(model=ServingModel(stack, "V1", image=XGBOOST_URI)))
    with pytest.raises(ConfigError, match=r"ShadowAlarms 'Test/Alarms': endpoint 'Test/Endpoint' has no shadow variant: "
                                          r"give it shadow=Variant\(model=...\)"):
        ShadowAlarms(stack, "Alarms", endpoint=alone)


def test_a_dashboard_used_alone_follows_its_endpoint_into_a_later_phase():
    stack = new_stack()
    dashboard = ShadowDashboard(stack, "Dashboard", endpoint=promoted_endpoint(stack))
    assert not dashboard.comparing and dashboard.factory.variants == [("production", "production")]


@pytest.mark.parametrize(("options", "message"), [
    ({"capture_analytics": True}, r"capture_analytics=True compares captured answers, but endpoint 'Test/Endpoint' "
                                  r"captures nothing: give it data_capture=DataCapture\(\)"),
    ({"criteria": {"min_agreement": 0.9}}, r"criteria min_agreement=0.9 judges the captured answers, but endpoint "
                                           r"'Test/Endpoint' captures nothing"),
    ({"rollback_on_alarms": True}, r"rollback_on_alarms=True needs endpoint 'Test/Endpoint' to update with "
                                   r"guardrails: give it deployment=DeploymentGuardrails"),
    ({"alarms": "yes"}, r"alarms must be a bool, got 'yes'"),
    ({"criteria": {"latency_tolerance": -1}}, r"criteria: "),
    ({"after_extensions": InconclusiveAction.EXTEND}, r"after_extensions must be InconclusiveAction.REMOVE_SHADOW"),
])
def test_shadow_test_refuses_settings_that_cannot_work(options, message):
    stack = new_stack()
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1), shadow=Variant(model=v2))
    with pytest.raises(ConfigError, match=message):
        ShadowTest(stack, "Test", endpoint=endpoint, **options)


def test_shadow_test_takes_only_an_endpoint_it_can_phase():
    stack = new_stack()
    imported = ShadowEndpoint.from_endpoint_name(stack, "E", "churn", shadow_variant_name="shadow")
    with pytest.raises(ConfigError, match=r"endpoint must be a ShadowEndpoint declared in this app .*got the imported "
                                          r"'Test/E': for an imported endpoint use ShadowAlarms, ShadowDashboard and "
                                          r"PromotionWorkflow directly"):
        ShadowTest(stack, "Test", endpoint=imported)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"endpoint must be an IShadowEndpoint .*got 'churn'"):
        ShadowTest(stack, "Test2", endpoint="churn")  # type: ignore[arg-type]
