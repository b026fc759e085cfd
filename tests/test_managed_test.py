"""ManagedShadowTest: the InferenceExperiment's properties, its outcomes, schedule, role and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match
from conftest import XGBOOST_URI, actions_of, new_stack, only, policy_statements, template_of

from shadow_constructs import (
    CaptureStore,
    ConfigError,
    DataCapture,
    ExperimentOutcome,
    ManagedShadowTest,
    ServingModel,
    ShadowEndpoint,
    Variant,
    VariantAutoscaling,
)

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def build(outcome=ExperimentOutcome.RUNNING, **overrides):
    stack = new_stack()
    candidate = ServingModel(stack, "Candidate", image=XGBOOST_URI, model_data="s3://models-1/v2/model.tar.gz")
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "Prod", "Churn-Prod", production_variant_name="AllTraffic")
    kwargs = {"endpoint": endpoint, "production_model": "churn-v1", "production_instance_count": 2,
              "shadow": Variant(model=candidate, instance_count=1), "sampling_percent": 50,
              "data_storage": DataCapture(store=CaptureStore(stack, "Store")), "outcome": outcome}
    kwargs.update(overrides)
    test = ManagedShadowTest(stack, "Test", **kwargs)
    return stack, test, template_of(stack)


@pytest.fixture(scope="module")
def running():
    return build()


def experiment(template):
    return only(template, "AWS::SageMaker::InferenceExperiment")["Properties"]


def test_experiment_shadows_the_production_variant(running):
    stack, test, template = running
    props = experiment(template)
    assert (props["Type"], props["EndpointName"], props["DesiredState"]) == ("ShadowMode", "Churn-Prod", "Running")
    assert props["ShadowModeConfig"] == {"SourceModelVariantName": "AllTraffic", "ShadowModelVariants": [
        {"ShadowModelVariantName": "shadow", "SamplingPercentage": 50}]}
    production, shadow = props["ModelVariants"]
    assert production == {"ModelName": "churn-v1", "VariantName": "AllTraffic", "InfrastructureConfig": {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2}}}
    assert shadow["ModelName"] == {"Fn::GetAtt": [stack.get_logical_id(test.node.scope.node.find_child("Candidate")
                                                                        .node.default_child), "ModelName"]}
    assert len(props["Name"]) <= 120 and "Schedule" not in props  # 7 days from creation


def test_data_storage_and_kms(running):
    stack, test, template = running
    props = experiment(template)
    assert props["DataStorageConfig"]["Destination"]["Fn::Join"][1][-1] == "/datacapture"
    assert props["DataStorageConfig"]["ContentType"] == {"CsvContentTypes": ["text/csv"],
                                                         "JsonContentTypes": ["application/json"]}
    assert "KmsKey" in props["DataStorageConfig"] and "KmsKey" in props
    # The storage key: SageMaker's grant, created as the experiment's role, for AWS resources only; nothing else.
    key, = template.find_resources("AWS::KMS::Key", {"Properties": {"Description": Match.string_like_regexp(
        "Shadow ML storage")}})
    storage = [s for s in policy_statements(template, "TestRole") if s["Resource"] == {"Fn::GetAtt": [key, "Arn"]}]
    assert sorted((s["Action"], s.get("Condition")) for s in storage) == [
        ("kms:CreateGrant", {"Bool": {"kms:GrantIsForAWSResource": "true"}}), ("kms:DescribeKey", None)]


def test_role_is_scoped_to_the_endpoint_models_and_capture_prefix(running):
    stack, test, template = running
    statements = policy_statements(template, "TestRole")
    endpoint, = [s for s in statements if "sagemaker:UpdateEndpoint" in actions_of(s)]
    assert endpoint["Resource"]["Fn::Join"][1][-1] == ":endpoint/churn-prod"
    models, = [s for s in statements if actions_of(s) == ["sagemaker:DescribeModel"]]
    assert len(models["Resource"]) == 2
    put, = [s for s in statements if "s3:PutObject" in actions_of(s)]
    assert put["Resource"]["Fn::Join"][1][-1] == "/datacapture/*"
    reads = [s for s in statements if "s3:GetObject" in actions_of(s)]
    assert reads[0]["Resource"]["Fn::Join"][1][-1] == ":s3:::models-1/v2/model.tar.gz"
    role = template.find_resources("AWS::IAM::Role")[stack.get_logical_id(test.role.node.default_child)]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == \
        {"Service": "sagemaker.amazonaws.com"}


def test_complete_keeps_production():
    _, _, template = build(ExperimentOutcome.COMPLETE_KEEP_PRODUCTION)
    props = experiment(template)
    assert props["DesiredState"] == "Completed"
    assert [v["VariantName"] for v in props["ModelVariants"]] == ["AllTraffic", "shadow"]


def test_promote_leaves_production_out_of_the_template():
    _, test, template = build(ExperimentOutcome.COMPLETE_PROMOTE_SHADOW)
    props = experiment(template)
    assert props["DesiredState"] == "Completed"
    assert [v["VariantName"] for v in props["ModelVariants"]] == ["shadow"]
    assert props["ShadowModeConfig"]["SourceModelVariantName"] == "AllTraffic"


def test_cancel():
    assert experiment(build(ExperimentOutcome.CANCEL)[2])["DesiredState"] == "Cancelled"


def test_explicit_schedule_from_start_and_duration():
    _, test, template = build(start=START, duration=cdk.Duration.days(3))
    assert experiment(template)["Schedule"] == {"StartTime": "2026-12-01T09:00:00Z", "EndTime": "2026-12-04T09:00:00Z"}
    _, _, template = build(start=START.replace(tzinfo=None), end=START.replace(tzinfo=None) + timedelta(hours=1))
    assert experiment(template)["Schedule"]["EndTime"] == "2026-12-01T10:00:00Z"


def test_endpoint_by_name_and_local_storage_without_key():
    stack = new_stack()
    candidate = ServingModel(stack, "Candidate", image=XGBOOST_URI)
    test = ManagedShadowTest(stack, "Test", endpoint="churn-prod", production_model="churn-v1",
                             shadow=Variant(model=candidate, instance_type="ml.g5.xlarge", variant_name="v2"))
    props = experiment(template_of(stack))
    assert props["ShadowModeConfig"]["SourceModelVariantName"] == "AllTraffic"
    assert "KmsKey" not in props and test.encryption_key is None
    assert props["ShadowModeConfig"]["ShadowModelVariants"][0]["SamplingPercentage"] == 100


def model(stack):
    return ServingModel(stack, f"M{len(stack.node.children)}", image=XGBOOST_URI)


CASES = [
    ({"sampling_percent": 0}, r"sampling_percent must be between 1 and 100, got 0"),
    ({"sampling_percent": 50.5}, r"sampling_percent must be an integer, got 50.5"),
    ({"duration": cdk.Duration.minutes(30), "start": START}, r"duration must be between 1 hour and 30 days, got 30 minutes"),
    ({"duration": cdk.Duration.days(31), "start": START}, r"duration must be between 1 hour and 30 days, got 31 days"),
    ({"duration": cdk.Duration.days(3)}, r"a duration other than 7 days needs start .*, got 3 days without start"),
    ({"end": START}, r"end needs start"),
    ({"start": START, "end": START + timedelta(days=40)}, r"the test must last from 1 hour to 30 days, got 40 days"),
    ({"start": START, "end": START - timedelta(hours=1)}, r"the test must last from 1 hour to 30 days"),
    ({"start": START, "end": START + timedelta(days=1), "duration": cdk.Duration.days(1)}, r"give duration or end, not both"),
    ({"start": "2026-12-01"}, r"start must be a datetime, got '2026-12-01'"),
    ({"endpoint": "churn_prod"}, r"endpoint must be an endpoint name .*, got 'churn_prod'"),
    ({"endpoint": 7}, r"endpoint must be an IShadowEndpoint \(such as an imported ShadowEndpoint\) or an endpoint name, got 7"),
    ({"production_model": ""}, r"production_model must be a ServingModel or a model name, got ''"),
    ({"production_instance_type": "m5.large"}, r"production_instance_type must be a SageMaker instance type"),
    ({"production_instance_type": "ml.inf1.xlarge"}, r"production_instance_type 'ml.inf1.xlarge' is not allowed in a shadow test"),
    ({"production_instance_type": "ml.m5.huge"}, r"production_instance_type must be a SageMaker real-time instance type, "
                                                 r"got 'ml.m5.huge'; nearest: ml.m5.large"),
    ({"production_instance_count": 0}, r"production_instance_count must be at least 1, got 0"),
    ({"shadow": "v2"}, r"shadow must be a Variant, got 'v2'"),
    ({"production_variant_name": "shadow"}, r"shadow variant_name must differ from production_variant_name, got 'shadow' for both"),
    ({"data_storage": DataCapture(sampling_percent=10)}, r"data_storage captures every request's input and output"),
    ({"data_storage": "s3://b/p"}, r"data_storage must be a DataCapture, got 's3://b/p'"),
    ({"outcome": "promote"}, r"outcome must be an ExperimentOutcome, got 'promote'"),
    ({"experiment_name": "x" * 121}, r"experiment_name must be 1-120 letters, digits and inner hyphens"),
    ({"encryption_key": "alias/x"}, r"encryption_key must be an aws_kms.IKey, got 'alias/x'"),
]


@pytest.mark.parametrize(("overrides", "message"), CASES)
def test_bad_managed_test_input_is_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build(**overrides)


def test_shadow_rules_for_managed_tests():
    stack = new_stack()
    with pytest.raises(ConfigError, match=r"shadow instance_type 'ml.inf1.xlarge' is not allowed"):
        ManagedShadowTest(stack, "A", endpoint="e", production_model="m",
                          shadow=Variant(model=model(stack), instance_type="ml.inf1.xlarge"))
    with pytest.raises(ConfigError, match=r"shadow autoscaling is not supported by managed shadow tests"):
        ManagedShadowTest(stack, "B", endpoint="e", production_model="m", shadow=Variant(
            model=model(stack), autoscaling=VariantAutoscaling(max_capacity=2, target_invocations_per_instance=10)))
