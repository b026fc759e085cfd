"""The contracts between constructs: IShadowEndpoint (created, imported by name or by attributes) is what every
consuming construct takes; removal policies; every grant_ method returns an iam.Grant."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from conftest import ROOT, XGBOOST_URI, new_stack, only, policy_statements, template_of

from shadow_constructs import (
    CapacitySize,
    CaptureAnalytics,
    CaptureStore,
    ConfigError,
    DeploymentGuardrails,
    IShadowEndpoint,
    ManagedShadowTest,
    PromotionWorkflow,
    ServingModel,
    ShadowAlarms,
    ShadowDashboard,
    ShadowEndpoint,
    ShadowMetricFactory,
    TrafficRouting,
    Variant,
)


@pytest.fixture(scope="module")
def imported():
    """An endpoint imported with every attribute, used by each consuming construct."""
    stack = new_stack(region="us-east-1")
    bucket = s3.Bucket.from_bucket_name(stack, "CaptureBucket", "team-capture")
    key = kms.Key.from_key_arn(stack, "CaptureKey", "arn:aws:kms:us-east-1:123456789012:key/capture")
    storage = kms.Key.from_key_arn(stack, "StorageKey", "arn:aws:kms:us-east-1:123456789012:key/storage")
    endpoint = ShadowEndpoint.from_endpoint_attributes(
        stack, "Imported", endpoint_name="churn-prod", production_variant_name="prod",
        shadow_variant_name="cand", sampling_percent=30, capture_bucket=bucket, capture_key=key,
        capture_prefix="teams/churn", encryption_key=storage,
        deployment=DeploymentGuardrails(traffic_routing=TrafficRouting.all_at_once(cdk.Duration.minutes(2))))
    dashboard = ShadowDashboard(stack, "Dashboard", endpoint=endpoint)
    alarms = ShadowAlarms(stack, "Alarms", endpoint=endpoint)
    analytics = CaptureAnalytics(stack, "Analytics", endpoint=endpoint)
    workflow = PromotionWorkflow(stack, "Promotion", endpoint=endpoint, capture_analytics=analytics,
                                 criteria={"min_agreement": 0.9}, ends_itself=False)
    shadow_model = ServingModel(stack, "Candidate", image=XGBOOST_URI)
    test = ManagedShadowTest(stack, "Managed", endpoint=ShadowEndpoint.from_endpoint_attributes(
        stack, "Plain", endpoint_name="plain", production_variant_name="live"),
        production_model="plain-model", shadow=Variant(model=shadow_model))
    return stack, endpoint, {"dashboard": dashboard, "alarms": alarms, "analytics": analytics, "workflow": workflow,
                             "test": test}, template_of(stack).to_json()


def definition(template: dict) -> dict:
    machine = next(r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "x" for p in parts))


def test_created_and_imported_endpoints_are_ishadowendpoints(imported):
    stack, endpoint, _, _ = imported
    other = new_stack()
    created = ShadowEndpoint(other, "E", production=Variant(model=ServingModel(other, "V1", image=XGBOOST_URI)))
    for each in (endpoint, created, ShadowEndpoint.from_endpoint_name(stack, "ByName", "churn")):
        assert isinstance(each, IShadowEndpoint)
    assert not isinstance("churn", IShadowEndpoint)
    assert (endpoint.sampling_percent, endpoint.capture_destination, endpoint.variants, endpoint.phase) == \
        (30, "s3://team-capture/teams/churn", {}, None)


def test_the_dashboard_shows_what_the_import_says(imported):
    stack, _, built, _ = imported
    body = json.dumps(stack.resolve(built["dashboard"].dashboard.node.default_child.dashboard_body))
    assert "Sampling: **30%**" in body and "Capture: s3://team-capture/teams/churn/" in body
    assert "| model |" not in body  # the models are not declared here
    by_name = ShadowDashboard(stack, "NamedDashboard", endpoint=ShadowEndpoint.from_endpoint_name(
        stack, "Named", "other", shadow_variant_name="s"))
    plain = json.dumps(stack.resolve(by_name.dashboard.node.default_child.dashboard_body))
    assert "Sampling" not in plain and "Capture" not in plain  # not known, so not claimed


def test_alarms_watch_the_imported_variants(imported):
    _, _, built, _ = imported
    metrics = built["alarms"].latency_alarm.metric.using_metrics
    assert {m.dimensions["VariantName"] for m in metrics.values()} == {"prod", "cand"}


def test_analytics_reads_the_imported_capture_location(imported):
    _, _, built, template = imported
    table = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Glue::Table")
    parameters = table["Properties"]["TableInput"]["Parameters"]
    assert parameters["projection.variant.values"] == "prod,cand"
    assert parameters["storage.location.template"] == "s3://team-capture/teams/churn/${endpoint}/${variant}/${datehour}/"
    statements = policy_statements(cdk.assertions.Template.from_json(template), "PromotionMeasureAgreementRole")
    assert {"Action": "kms:Decrypt", "Effect": "Allow",
            "Resource": "arn:aws:kms:us-east-1:123456789012:key/capture"} in statements
    assert built["analytics"].capture_location.prefix == "teams/churn"


def test_the_workflow_judges_with_the_imported_sampling_and_guardrails(imported):
    _, _, _, template = imported
    states = definition(template)["States"]
    assert states["Judge"]["Parameters"]["criteria"] == {"sampling_percent": 30, "min_agreement": 0.9}
    assert states["Judge"]["Parameters"]["context"]["production_variant"] == "prod"
    assert states["PromoteUpdateEndpoint"]["Parameters"]["DeploymentConfig"] == {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 120},
        "TerminationWaitInSeconds": 0}}
    assert states["PromotePrepare"]["Parameters"]["instance_settings"] == "production"


def test_the_managed_test_runs_on_the_imported_production_variant(imported):
    _, _, built, template = imported
    experiment = only(cdk.assertions.Template.from_json(template), "AWS::SageMaker::InferenceExperiment")
    assert experiment["Properties"]["EndpointName"] == "plain"
    assert experiment["Properties"]["ShadowModeConfig"]["SourceModelVariantName"] == "live"
    assert built["test"].sampling_percent == 100


def test_the_metric_factory_takes_an_imported_endpoint(imported):
    _, endpoint, _, _ = imported
    queries = ShadowMetricFactory(endpoint).metric_data_queries(keys=["Invocations"])
    assert [q["MetricStat"]["Metric"]["Dimensions"][1]["Value"] for q in queries] == ["prod", "cand"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"endpoint_name": "bad_name"}, r"endpoint_name must be 1-63 letters, digits and inner hyphens, got 'bad_name'"),
    ({"endpoint_name": 7}, r"endpoint_name must be a string, got 7"),
    ({"shadow_variant_name": "AllTraffic"}, r"shadow_variant_name must differ from production_variant_name, got 'AllTraffic'"),
    ({"shadow_variant_name": "s", "sampling_percent": 0}, r"sampling_percent must be between 1 and 100, got 0"),
    ({"sampling_percent": 50}, r"sampling_percent goes with shadow_variant_name, got 50 without one"),
    ({"capture_prefix": "x"}, r"capture_prefix goes with capture_store or capture_bucket, got 'x' without either"),
    ({"capture_bucket": "team-capture"}, r"capture_bucket must be an aws_s3.IBucket, got 'team-capture'"),
    ({"capture_key": "arn:key"}, r"capture_key goes with capture_bucket; a CaptureStore brings its own key"),
    ({"deployment": "blue-green"}, r"deployment must be a DeploymentGuardrails, got 'blue-green'"),
    ({"encryption_key": "arn:aws:kms:us-east-1:1:key/k"},
     r"encryption_key must be an aws_kms.IKey, got 'arn:aws:kms:us-east-1:1:key/k'"),
])
def test_imported_attributes_are_checked_at_synth(kwargs, message):
    stack = new_stack()
    with pytest.raises(ConfigError, match=r"ShadowEndpoint.from_endpoint_attributes 'Test/E': " + message):
        ShadowEndpoint.from_endpoint_attributes(stack, "E", **{"endpoint_name": "churn", **kwargs})


def test_the_workflow_may_create_sagemakers_grant_on_an_imported_endpoints_storage_key(imported):
    """UpdateEndpoint on an endpoint whose configs name a storage KmsKeyId: SageMaker creates a grant on the key as the
    caller (CreateEndpointConfig's KmsKeyId), so the workflow's role needs kms:CreateGrant on it: only for AWS
    resources."""
    _, endpoint, _, template = imported
    assert endpoint.encryption_key is not None
    statements = [s for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
                  and "StateMachineRole" in json.dumps(r["Properties"]["Roles"])
                  for s in r["Properties"]["PolicyDocument"]["Statement"]]
    grant = [s for s in statements if s["Action"] == "kms:CreateGrant"]
    assert grant == [{"Action": "kms:CreateGrant", "Effect": "Allow",
                      "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                      "Resource": "arn:aws:kms:us-east-1:123456789012:key/storage"}]


def test_the_capture_prefix_must_be_key_segments():
    stack = new_stack()
    with pytest.raises(ConfigError, match=r"capture_prefix must be S3 key segments .*, got '/x/'"):
        ShadowEndpoint.from_endpoint_attributes(stack, "E", endpoint_name="churn", capture_store=CaptureStore(stack, "S"),
                                                capture_prefix="/x/")


def test_an_endpoint_subclass_of_the_base_works_with_every_consumer():
    """The interface is structural: an endpoint of a user's own (subclassing the base) is taken as well."""
    from shadow_constructs import ShadowEndpointBase

    class Mine(ShadowEndpointBase):
        def __init__(self, scope, construct_id):
            super().__init__(scope, construct_id)
            self.endpoint_name, self.endpoint_arn = "mine", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mine"
            self.production_variant_name, self.production_variant_names = "a", ["a"]
            self.shadow_variant_name, self.sampling_percent, self.capture_location = "b", None, None
            self.phase = self.promoted_instance_settings = self.promoted_instance_override = self.deployment = None

    stack = new_stack()
    mine = Mine(stack, "Mine")
    assert isinstance(mine, IShadowEndpoint)
    ShadowDashboard(stack, "D", endpoint=mine)
    ShadowAlarms(stack, "A", endpoint=mine)
    with pytest.raises(ConfigError, match=r"the endpoint captures no data here"):
        CaptureAnalytics(stack, "C", endpoint=mine)


def test_constructs_branch_on_no_concrete_endpoint_class_and_probe_no_attributes():
    """Consumers use the IShadowEndpoint members only: no isinstance on ShadowEndpoint(Base), no getattr probing."""
    offenders = []
    for path in sorted((ROOT / "shadow_constructs").glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"isinstance\([^)]*,\s*\(?(ShadowEndpoint|ShadowEndpointBase|ImportedShadowEndpoint)\b", line) \
                    or re.search(r"\bgetattr\(\s*(endpoint|self\.endpoint|ep)\b", line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []


# Removal policies


def _policies(template, kind: str) -> set[str]:
    return {r.get("DeletionPolicy", "Delete") for r in template.find_resources(kind).values()}


def test_capture_store_keeps_its_data_by_default():
    stack = new_stack()
    store = CaptureStore(stack, "Kept")
    template = template_of(stack)
    assert _policies(template, "AWS::S3::Bucket") == {"Retain"} and _policies(template, "AWS::KMS::Key") == {"Retain"}
    assert store.retained and store.removal_policy is cdk.RemovalPolicy.RETAIN


def test_the_deprecated_destroy_on_removal_still_works_and_warns():
    stack = new_stack()
    with pytest.warns(DeprecationWarning, match=r"destroy_on_removal=\.\.\.\) is deprecated.*removal_policy"):
        store = CaptureStore(stack, "Old", destroy_on_removal=True)
    assert store.removal_policy is cdk.RemovalPolicy.DESTROY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ConfigError, match=r"give removal_policy or the deprecated destroy_on_removal, not both"):
            CaptureStore(stack, "Both", destroy_on_removal=True, removal_policy=cdk.RemovalPolicy.RETAIN)


def test_keys_and_logs_the_constructs_create_follow_their_removal_policy():
    stack = new_stack()
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1), shadow=Variant(model=v2),
                              removal_policy=cdk.RemovalPolicy.RETAIN)
    PromotionWorkflow(stack, "Promotion", endpoint=endpoint, removal_policy=cdk.RemovalPolicy.RETAIN,
                      report_store=CaptureStore(stack, "Reports"))
    template = template_of(stack)
    assert _policies(template, "AWS::KMS::Key") == {"Retain"}
    assert _policies(template, "AWS::Logs::LogGroup") == {"Retain"}
    stack = new_stack()
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1), shadow=Variant(model=v2))
    CaptureAnalytics(stack, "Analytics", endpoint=endpoint, bucket=s3.Bucket.from_bucket_name(stack, "B", "cap"),
                     removal_policy=cdk.RemovalPolicy.DESTROY)
    template = template_of(stack)
    assert _policies(template, "AWS::KMS::Key") == {"Delete"}  # the endpoint's storage key (default) and results key
    assert _policies(template, "AWS::S3::Bucket") == {"Delete"}


@pytest.mark.parametrize("make", [
    lambda stack: CaptureStore(stack, "S", removal_policy="destroy"),
    lambda stack: ShadowEndpoint(stack, "E", production=Variant(model=ServingModel(stack, "M", image=XGBOOST_URI)),
                                 removal_policy=True),
])
def test_a_removal_policy_must_be_one(make):
    with pytest.raises(ConfigError, match=r"removal_policy must be an aws_cdk.RemovalPolicy \(RETAIN, DESTROY, .*\), got"):
        make(new_stack())


# Grants


def test_every_grant_method_returns_a_grant():
    stack = new_stack()
    role = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    model = ServingModel(stack, "M", image=XGBOOST_URI, model_data="s3://models-1/v1/model.tar.gz")
    endpoint = ShadowEndpoint(stack, "E", production=Variant(model=model), shadow=Variant(
        model=ServingModel(stack, "M2", image=XGBOOST_URI)))
    store = CaptureStore(stack, "Store")
    analytics = CaptureAnalytics(stack, "A", endpoint=endpoint, store=store)
    grants = {"grant_invoke": endpoint.grant_invoke(role), "grant_read": store.grant_read(role),
              "grant_write": store.grant_write(role), "grant_query": analytics.grant_query(role),
              "grant_describe": model.grant_describe(role), "grant_artifacts": model.grant_artifacts(role)}
    assert {name: type(grant).__name__ for name, grant in grants.items() if not isinstance(grant, iam.Grant)} == {}
    assert all(grant.success for grant in grants.values())
    # and no grant_ method was left out of this test
    found = {name for path in (ROOT / "shadow_constructs").glob("*.py")
             for name in re.findall(r"def (grant_\w+)\(self, grantee", path.read_text())}
    assert found == set(grants)


def test_guardrails_render_once_for_the_endpoint_and_the_workflow():
    stack = new_stack()
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI) for n in ("V1", "V2"))
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1, instance_count=2),
                              shadow=Variant(model=v2), deployment=DeploymentGuardrails(
                                  traffic_routing=TrafficRouting.linear(CapacitySize.instances(1)),
                                  maximum_execution_timeout=cdk.Duration.hours(1)))
    alarms = ShadowAlarms(stack, "Alarms", endpoint=endpoint)
    endpoint.add_rollback_alarm(alarms.latency_alarm)
    PromotionWorkflow(stack, "Promotion", endpoint=endpoint, ends_itself=False)
    template = template_of(stack).to_json()
    rendered = only(cdk.assertions.Template.from_json(template), "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]
    assert rendered == definition(template)["States"]["PromoteUpdateEndpoint"]["Parameters"]["DeploymentConfig"]
    assert rendered["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": alarms.latency_alarm.node.default_child.alarm_name}]}
    assert rendered["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["LinearStepSize"] == \
        {"Type": "INSTANCE_COUNT", "Value": 1}


def test_the_example_stacks_use_no_deprecated_parameter():
    for path in sorted(Path(ROOT / "stacks").glob("*.py")):
        assert "destroy_on_removal" not in path.read_text(), path.name
