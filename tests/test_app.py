"""The example app: cdk-nag clean, cfn-lint clean, the reference scenario, the plan."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from conftest import ROOT, cfn_lint_findings, nag_violations, only

from app import build_app
from shadow_cli.plan import main as plan_main
from shadow_cli.plan import plan_assembly, render_plan
from shadow_constructs import ConfigError
from stacks import ShadowTestConfig

VALIDATE_AS_ERRORS = "@aws-cdk/core:validateAgainstDefaultRules"


def validated_app(context: dict) -> cdk.App:
    """An app whose synth runs CDK's CloudFormation validation with its findings as errors: the plugin registered
    explicitly (the suite's kernels skip the automatic one, see conftest.py) and the flag cdk.json sets."""
    app = cdk.App(outdir=tempfile.mkdtemp(prefix="cdkout-app-"), context=context)
    cdk.Validations.of(app).add_plugins(cdk.CloudFormationValidatePlugin())
    return app


@pytest.fixture(scope="module")
def synthesized():
    # The context `cdk synth` gives the app: cdk.json's, plus path metadata.
    context = dict(json.loads((ROOT / "cdk.json").read_text())["context"], **{"aws:cdk:enable-path-metadata": True})
    app = validated_app(context)
    build_app(app)
    violations = nag_violations(app)  # cdk-nag's and the CloudFormation validation's findings
    return app, violations


@pytest.fixture(scope="module")
def template(synthesized):
    app, _ = synthesized
    return json.loads((Path(app.outdir) / "ChurnShadowTest.template.json").read_text())


def test_cdk_nag_reports_no_unacknowledged_finding(synthesized):
    _, violations = synthesized
    assert violations == []


def test_cdk_json_makes_template_validation_findings_errors():
    assert json.loads((ROOT / "cdk.json").read_text())["context"][VALIDATE_AS_ERRORS] is True


def test_template_validation_as_the_example_app_runs_it_fails_an_invalid_template():
    """The control for the example app's validation above: the same set-up fails a synth on a bad property."""
    app = validated_app({VALIDATE_AS_ERRORS: True})
    cdk.CfnResource(cdk.Stack(app, "Invalid"), "Bucket", type="AWS::S3::Bucket", properties={"BucketNameX": "b"})
    violations = nag_violations(app)
    assert len(violations) == 1 and "Invalid/Bucket" in violations[0], violations


def test_every_template_is_cfn_lint_clean(synthesized):
    app, _ = synthesized
    templates = list(Path(app.outdir).glob("*.template.json"))
    assert templates
    for path in templates:
        assert cfn_lint_findings(path.read_text()) == [], path.name


def test_reference_scenario_variants_and_sampling(template):
    config = only(assertions.Template.from_json(template), "AWS::SageMaker::EndpointConfig")["Properties"]
    production, = config["ProductionVariants"]
    shadow, = config["ShadowProductionVariants"]
    assert (production["InstanceType"], production["InitialInstanceCount"], production["InitialVariantWeight"]) == \
        ("ml.m5.xlarge", 2, 1)
    assert (shadow["InstanceType"], shadow["InitialInstanceCount"], shadow["InitialVariantWeight"]) == \
        ("ml.m5.xlarge", 1, 0.5)
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 100
    assert {o["CaptureMode"] for o in config["DataCaptureConfig"]["CaptureOptions"]} == {"Input", "Output"}


def test_both_models_are_xgboost_assets(template):
    models = assertions.Template.from_json(template).find_resources("AWS::SageMaker::Model")
    assert len(models) == 2
    for model in models.values():
        container = model["Properties"]["PrimaryContainer"]
        assert container["Image"]["Fn::Join"][1][-1] == "/sagemaker-xgboost:1.7-1"
        assert "cdk-hnb659fds-assets" in container["ModelDataUrl"]["Fn::Sub"]
        assert model["Properties"]["EnableNetworkIsolation"] is True


def test_capture_bucket_is_retained_by_default(template):
    buckets = assertions.Template.from_json(template).find_resources("AWS::S3::Bucket")
    assert buckets and all(b["DeletionPolicy"] == "Retain" for b in buckets.values())


def test_plan_states_the_test_in_plain_words(synthesized):
    app, _ = synthesized
    plan = plan_assembly(app.outdir)
    endpoint, = plan[0].endpoints
    assert endpoint.sampling_percent == 50
    assert endpoint.instance_hours_per_day() == {"production": (48, 48), "shadow": (24, 24)}
    text = render_plan(plan)
    assert "50% of production requests are copied to the shadow" in text
    assert "72 instance-hours per day (production 48, shadow 24)" in text
    assert "s3://<CaptureStore/Bucket>/datacapture/<endpoint>/<variant>/yyyy/mm/dd/hh/" in text
    assert "2 x ml.m5.xlarge" in text and "1 x ml.m5.xlarge" in text
    assert "Kept after cdk destroy" in text and "CaptureStore/Bucket (AWS::S3::Bucket)" in text
    assert "3 auto-rollback alarm(s)" in text
    assert "Promotion workflow Promotion/StateMachine: gather metrics, judge, report, then update the endpoint" in text
    # The test ends itself after 7 days (the default) and says what it costs until then: 72 instance-hours a day.
    # Judged at every look (hourly, the default) from the criteria's 10 minutes on: 168 looks.
    assert ("the test ENDS ITSELF 7 days after the deploy that creates it; it is judged "
            "at 168 looks: every 1 hour from 1 hour on and at its end, and a PROMOTE or REJECT at a look ends it then "
            "(one execution waits in WaitForNextLook; `shadow-test status` shows the next look); until then it costs "
            "504 instance-hours (168 of them the shadow's); INCONCLUSIVE at the end extends the test, and still "
            "INCONCLUSIVE after that REMOVES THE SHADOW (production untouched): the test stops costing") in text
    analytics = next(line for line in text.splitlines() if line.startswith("  Capture analytics "))
    assert re.fullmatch(
        r"  Capture analytics CaptureAnalytics/WorkGroup \(Athena workgroup \w+\): table \w+\.captured_records over "
        r"s3://<CaptureStore/Bucket>/datacapture/<endpoint>/<variant>/yyyy/mm/dd/hh/, endpoint churn-shadow-test, "
        r"variants production,shadow; 5 named queries \(shadow-confusion-matrix, shadow-label-agreement, "
        r"shadow-numeric-measures, shadow-pairing, shadow-record-counts\); at most 10.0 GiB scanned per query", analytics)
    assert "then end the managed test (StopInferenceExperiment)" in text
    assert "Managed shadow test" in text and "on existing endpoint churn-production (Running)" in text
    assert "50% of requests to variant 'AllTraffic' are copied to the shadow" in text


def test_plan_command_fails_clearly_without_assembly(tmp_path, capsys):
    assert plan_main([str(tmp_path)]) == 2
    assert "no cloud assembly" in capsys.readouterr().err


def test_config_overrides_apply_in_order(tmp_path):
    file = tmp_path / "test.json"
    file.write_text(json.dumps({"shadow_instance_count": 3, "sampling_percent": 20}))
    config = ShadowTestConfig.load({"sampling_percent": 10, "production_instance_count": 4}, str(file))
    assert (config.sampling_percent, config.shadow_instance_count, config.production_instance_count) == (20, 3, 4)
    assert ShadowTestConfig.load('{"sampling_percent": 30}').sampling_percent == 30


@pytest.mark.parametrize(("context", "message"), [
    ({"samplng_percent": 5}, r"unknown key 'samplng_percent'"),
    ({"sampling_percent": "50"}, r"sampling_percent must be int, got '50'"),
    ({"capture_enabled": 1}, r"capture_enabled must be bool, got 1"),
    ({"production_instance_count": True}, r"production_instance_count must be int, got True"),
    ("[1, 2]", r"must be a JSON object, got list"),
])
def test_config_rejects_bad_values(context, message):
    with pytest.raises(ConfigError, match=message):
        ShadowTestConfig.load(context)


def test_config_file_must_be_readable(tmp_path):
    with pytest.raises(ConfigError, match=r"shadow-test-config must name a readable JSON file, got '.*missing.json'"):
        ShadowTestConfig.load(None, str(tmp_path / "missing.json"))


def test_config_rejects_unknown_traffic_routing():
    app = cdk.App(outdir=tempfile.mkdtemp(), context={"shadow-test": {"traffic_routing": "blue-green"}, "nag": "false"})
    with pytest.raises(ConfigError, match=r"traffic_routing must be one of all_at_once, canary, linear, got 'blue-green'"):
        build_app(app)


def test_canary_config_reaches_the_endpoint():
    app = cdk.App(outdir=tempfile.mkdtemp(), context={
        "shadow-test": {"traffic_routing": "canary", "traffic_routing_percent": 25, "capture_enabled": False},
        "nag": "false"})
    build_app(app)
    template = assertions.Template.from_json(app.synth().get_stack_by_name("ChurnShadowTest").template)
    routing = only(template, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"][
        "BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "CANARY", "WaitIntervalInSeconds": 300,
                       "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}}
    assert "DataCaptureConfig" not in only(template, "AWS::SageMaker::EndpointConfig")["Properties"]


def test_cdk_nag_fails_an_unsafe_addition():
    from aws_cdk import aws_s3 as s3
    app = cdk.App(outdir=tempfile.mkdtemp(prefix="cdkout-bad-"))
    build_app(app)
    s3.Bucket(app.node.find_child("ChurnShadowTest"), "Unsafe")
    violations = nag_violations(app)
    assert any(v.startswith("AwsSolutions-S1 at ChurnShadowTest/Unsafe") for v in violations)
    assert any(v.startswith("AwsSolutions-S10 at ChurnShadowTest/Unsafe") for v in violations)


def test_example_serving_resources_match_the_snapshot(template, snapshot):
    """The SageMaker part of the example template, asset hashes masked; update with --snapshot-update."""
    text = json.dumps({logical_id: {k: v for k, v in resource.items() if k != "Metadata"}
                       for logical_id, resource in template["Resources"].items()
                       if resource["Type"].startswith(("AWS::SageMaker::", "AWS::IAM::"))}, indent=1, sort_keys=True)
    assert re.sub(r"[0-9a-f]{64}", "<asset-hash>", text) == snapshot


def test_managed_test_stack_is_in_the_example(synthesized):
    app, _ = synthesized
    template = json.loads((Path(app.outdir) / "ChurnManagedShadowTest.template.json").read_text())
    props = only(assertions.Template.from_json(template), "AWS::SageMaker::InferenceExperiment")["Properties"]
    assert (props["EndpointName"], props["ShadowModeConfig"]["ShadowModelVariants"][0]["SamplingPercentage"]) == \
        ("churn-production", 50)


@pytest.mark.parametrize(("managed", "message"), [
    ({"endpoint_name": "churn", "outcome": "finish"}, r"outcome must be one of running, complete, promote, cancel"),
    ({"endpoint_name": "churn", "start": "tomorrow"}, r"start must be an ISO 8601 time like"),
    ({"endpoint_name": "churn", "duration_hours": 24}, r"a duration other than 7 days needs start"),
])
def test_managed_test_config_errors(managed, message):
    app = cdk.App(outdir=tempfile.mkdtemp(), context={"managed-test": managed, "nag": "false"})
    with pytest.raises(ConfigError, match=message):
        build_app(app)


def test_managed_test_outcome_from_configuration():
    app = cdk.App(outdir=tempfile.mkdtemp(), context={
        "managed-test": {"endpoint_name": "churn", "outcome": "promote", "start": "2026-12-01T09:00:00Z",
                         "duration_hours": 48, "promotion_criteria": {"latency_tolerance": 0.05}}, "nag": "false"})
    build_app(app)
    template = assertions.Template.from_json(app.synth().get_stack_by_name("ChurnManagedShadowTest").template)
    props = only(template, "AWS::SageMaker::InferenceExperiment")["Properties"]
    assert props["DesiredState"] == "Completed" and [v["VariantName"] for v in props["ModelVariants"]] == ["shadow"]
    assert props["Schedule"] == {"StartTime": "2026-12-01T09:00:00Z", "EndTime": "2026-12-03T09:00:00Z"}
    text = render_plan(plan_assembly(app.outdir))
    assert "on existing endpoint churn (Completed - shadow PROMOTED, production removed)" in text
    # The managed test's workflow takes its own verdict criteria (the Judge step's parameters).
    assert '\\"latency_tolerance\\":0.05' in json.dumps(
        app.synth().get_stack_by_name("ChurnManagedShadowTest").template)
    assert "schedule   2026-12-01T09:00:00Z to 2026-12-03T09:00:00Z" in text


def test_managed_stack_needs_an_endpoint_name():
    from stacks import ManagedShadowTestStack, ManagedTestConfig

    app = cdk.App(outdir=tempfile.mkdtemp())
    with pytest.raises(ConfigError, match=r"endpoint_name must name the existing endpoint to test on, got None"):
        ManagedShadowTestStack(app, "Managed", config=ManagedTestConfig())


def test_example_dashboard_body_matches_the_snapshot(template, snapshot):
    """The example stack's dashboard, as CloudFormation receives it (references kept as written)."""
    dashboard = next(r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = "".join(p if isinstance(p, str) else json.dumps(p, sort_keys=True) for p in parts)
    assert "production p99 (ms)" in body and "Shadow - production: error rate" in body
    assert body == snapshot


def test_example_compares_answers_in_athena(template):
    found = assertions.Template.from_json(template)
    parameters = only(found, "AWS::Glue::Table")["Properties"]["TableInput"]["Parameters"]
    assert (parameters["projection.endpoint.values"], parameters["projection.variant.values"]) == \
        ("churn-shadow-test", "production,shadow")
    assert parameters["storage.location.template"]["Fn::Join"][1][-1] == "/datacapture/${endpoint}/${variant}/${datehour}/"
    assert len(found.find_resources("AWS::Athena::NamedQuery")) == 5
    assert "AnalyticsWorkGroup" in template["Outputs"]
