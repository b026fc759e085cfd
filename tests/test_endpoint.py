"""ShadowEndpoint: config, weights, capture, KMS, guardrails, autoscaling, metrics, grants, import."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from conftest import XGBOOST_URI, actions_of, new_stack, only, policy_statements, template_of

from shadow_constructs import (
    ENDPOINT_METRICS,
    CapacitySize,
    CaptureStore,
    ConfigError,
    DataCapture,
    DeploymentGuardrails,
    IShadowEndpoint,
    RoutingStrategy,
    ServingModel,
    ShadowEndpoint,
    TrafficRouting,
    Variant,
    VariantAutoscaling,
)


def two_models(stack):
    return (ServingModel(stack, "V1", image=XGBOOST_URI, model_data="s3://models-1/v1/model.tar.gz"),
            ServingModel(stack, "V2", image=XGBOOST_URI, model_data="s3://models-1/v2/model.tar.gz"))


@pytest.fixture(scope="module")
def full():
    """Everything switched on: capture to a new store, canary guardrails with an alarm, autoscaling."""
    stack = new_stack()
    v1, v2 = two_models(stack)
    alarm = cloudwatch.Alarm(stack, "Alarm", metric=cloudwatch.Metric(namespace="X", metric_name="Y"),
                             threshold=1, evaluation_periods=1)
    endpoint = ShadowEndpoint(
        stack, "Endpoint",
        production=Variant(model=v1, instance_count=2, volume_size_in_gb=30,
                           routing_strategy=RoutingStrategy.LEAST_OUTSTANDING_REQUESTS,
                           model_data_download_timeout=cdk.Duration.minutes(10),
                           container_startup_health_check_timeout=cdk.Duration.minutes(5),
                           autoscaling=VariantAutoscaling(min_capacity=2, max_capacity=4,
                                                          target_invocations_per_instance=750)),
        shadow=Variant(model=v2, variant_name="candidate-v2",
                       autoscaling=VariantAutoscaling(max_capacity=2, target_invocations_per_instance=750)),
        sampling_percent=25,
        data_capture=DataCapture(sampling_percent=40, json_content_types=["application/json", "application/jsonlines"]),
        deployment=DeploymentGuardrails(
            traffic_routing=TrafficRouting.canary(CapacitySize.instances(1), wait=cdk.Duration.minutes(10)),
            termination_wait=cdk.Duration.minutes(2), maximum_execution_timeout=cdk.Duration.hours(1),
            rollback_alarms=[alarm]),
    )
    return stack, endpoint, template_of(stack)


def config_of(template):
    return only(template, "AWS::SageMaker::EndpointConfig")["Properties"]


def test_shadow_weight_is_production_weight_times_sampling_share(full):
    _, _, template = full
    config = config_of(template)
    assert [v["InitialVariantWeight"] for v in config["ProductionVariants"]] == [1]
    assert [v["InitialVariantWeight"] for v in config["ShadowProductionVariants"]] == [0.25]


def test_variant_settings_reach_the_config(full):
    _, _, template = full
    production, = config_of(template)["ProductionVariants"]
    assert production["VariantName"] == "production"
    assert production["InstanceType"] == "ml.m5.xlarge" and production["InitialInstanceCount"] == 2
    assert production["VolumeSizeInGB"] == 30
    assert production["ModelDataDownloadTimeoutInSeconds"] == 600
    assert production["ContainerStartupHealthCheckTimeoutInSeconds"] == 300
    assert production["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    shadow, = config_of(template)["ShadowProductionVariants"]
    assert shadow["VariantName"] == "candidate-v2" and shadow["InitialInstanceCount"] == 1


def test_endpoint_config_name_is_never_fixed(full):
    _, _, template = full
    assert "EndpointConfigName" not in config_of(template)


def test_capture_goes_to_a_new_kms_store_under_the_prefix(full):
    stack, endpoint, template = full
    capture = config_of(template)["DataCaptureConfig"]
    store = endpoint.capture_store
    assert store is not None
    bucket_id = stack.get_logical_id(store.bucket.node.default_child)
    key_id = stack.get_logical_id(store.encryption_key.node.default_child)
    assert capture["DestinationS3Uri"] == {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/datacapture"]]}
    assert capture["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert capture["InitialSamplingPercentage"] == 40
    assert capture["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json", "application/jsonlines"]}
    assert capture["EnableCapture"] is True


def test_each_model_may_put_capture_objects_under_the_prefix_only(full):
    stack, endpoint, template = full
    bucket_id = stack.get_logical_id(endpoint.capture_store.bucket.node.default_child)
    key_id = stack.get_logical_id(endpoint.capture_store.encryption_key.node.default_child)
    for role in ("V1", "V2"):
        statements = policy_statements(template, role)
        put, = [s for s in statements if "s3:PutObject" in actions_of(s)]
        assert sorted(actions_of(put)) == ["s3:AbortMultipartUpload", "s3:PutObject"]
        assert put["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/datacapture/*"]]}
        encrypt, = [s for s in statements if "kms:GenerateDataKey" in actions_of(s)]
        assert encrypt["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert not any(a.startswith("s3:Get") or a.startswith("s3:Delete")
                       for s in statements if s is not put for a in actions_of(s)
                       if s["Resource"] == put["Resource"])


def test_storage_is_encrypted_with_a_new_rotating_key(full):
    stack, endpoint, template = full
    key_id = stack.get_logical_id(endpoint.encryption_key.node.default_child)
    assert config_of(template)["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert template.find_resources("AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True


def test_guardrails_render_blue_green_canary_and_rollback(full):
    stack, _, template = full
    config = only(template, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]
    assert config["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 600,
                                        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
        "TerminationWaitInSeconds": 120, "MaximumExecutionTimeoutInSeconds": 3600}
    alarm_id = next(iter(template.find_resources("AWS::CloudWatch::Alarm")))
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": {"Ref": alarm_id}}]}


def test_models_may_describe_the_rollback_alarms(full):
    _, _, template = full
    alarm_id = next(iter(template.find_resources("AWS::CloudWatch::Alarm")))
    for role in ("V1", "V2"):
        describe, = [s for s in policy_statements(template, role) if "cloudwatch:DescribeAlarms" in actions_of(s)]
        assert describe["Resource"] == {"Fn::GetAtt": [alarm_id, "Arn"]}


def test_both_variants_autoscale_on_invocations_per_instance(full):
    stack, endpoint, template = full
    endpoint_id = stack.get_logical_id(endpoint.resource)
    targets = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    by_variant = {t["Properties"]["ResourceId"]["Fn::Join"][1][-1]: t["Properties"] for t in targets.values()}
    assert set(by_variant) == {"/variant/production", "/variant/candidate-v2"}
    production = by_variant["/variant/production"]
    assert production["ResourceId"]["Fn::Join"][1][:2] == ["endpoint/", {"Fn::GetAtt": [endpoint_id, "EndpointName"]}]
    assert (production["MinCapacity"], production["MaxCapacity"]) == (2, 4)
    assert production["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert "RoleARN" not in production  # Application Auto Scaling's service-linked role
    template.resource_properties_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", {
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 750, "ScaleInCooldown": 300, "ScaleOutCooldown": 60, "DisableScaleIn": False,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}}, 2)


def test_add_rollback_alarm_later_extends_the_list():
    stack = new_stack()
    v1, v2 = two_models(stack)
    endpoint = ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1), shadow=Variant(model=v2),
                              deployment=DeploymentGuardrails())
    alarms = [cloudwatch.Alarm(stack, f"A{i}", metric=cloudwatch.Metric(namespace="X", metric_name="Y"),
                               threshold=1, evaluation_periods=1) for i in range(10)]
    for alarm in alarms:
        endpoint.add_rollback_alarm(alarm)
    rollback = only(template_of(stack), "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"][
        "AutoRollbackConfiguration"]
    assert len(rollback["Alarms"]) == 10
    extra = cloudwatch.Alarm(stack, "Eleventh", metric=cloudwatch.Metric(namespace="X", metric_name="Y"),
                             threshold=1, evaluation_periods=1)
    with pytest.raises(ConfigError, match=r"rollback alarms take at most 10 alarms; adding 'Test/Eleventh' would make 11"):
        endpoint.add_rollback_alarm(extra)


def test_default_endpoint_has_no_capture_no_guardrails_and_full_sampling():
    stack = new_stack()
    v1, v2 = two_models(stack)
    endpoint = ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1), shadow=Variant(model=v2))
    template = template_of(stack)
    config = config_of(template)
    assert "DataCaptureConfig" not in config
    assert config["ShadowProductionVariants"][0]["InitialVariantWeight"] == 1
    assert "DeploymentConfig" not in only(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint.sampling_percent == 100 and endpoint.capture_store is None
    assert endpoint.variant_names == ["production", "shadow"]


def test_plain_endpoint_takes_several_weighted_production_variants():
    stack = new_stack()
    v1, v2 = two_models(stack)
    endpoint = ShadowEndpoint(stack, "Endpoint", production=[Variant(model=v1, weight=3), Variant(model=v2)])
    config = config_of(template_of(stack))
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in config["ProductionVariants"]] == \
        [("production", 3), ("production-2", 1)]
    assert "ShadowProductionVariants" not in config
    assert endpoint.shadow_variant_name is None and endpoint.sampling_percent is None


def test_existing_bucket_capture_uses_given_key_and_prefix():
    stack = new_stack()
    v1, v2 = two_models(stack)
    key = kms.Key(stack, "CaptureKey")
    bucket = s3.Bucket(stack, "Existing", encryption_key=key)
    ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1), shadow=Variant(model=v2),
                   data_capture=DataCapture(bucket=bucket, prefix="teams/churn/capture", capture_output=False))
    template = template_of(stack)
    capture = config_of(template)["DataCaptureConfig"]
    assert capture["DestinationS3Uri"]["Fn::Join"][1][-1] == "/teams/churn/capture"
    assert capture["KmsKeyId"] == {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}]
    assert len(template.find_resources("AWS::S3::Bucket")) == 1  # no store created


def test_shared_capture_store_is_used_as_given():
    stack = new_stack()
    v1, v2 = two_models(stack)
    store = CaptureStore(stack, "Shared")
    endpoint = ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1), shadow=Variant(model=v2),
                              data_capture=DataCapture(store=store))
    assert endpoint.capture_store is None
    bucket_id = stack.get_logical_id(store.bucket.node.default_child)
    assert config_of(template_of(stack))["DataCaptureConfig"]["DestinationS3Uri"]["Fn::Join"][1][1] == \
        {"Ref": bucket_id}


def test_given_key_and_local_storage_instances():
    stack = new_stack()
    v1, v2 = two_models(stack)
    key = kms.Key(stack, "Mine")
    ShadowEndpoint(stack, "WithKey", production=Variant(model=v1), shadow=Variant(model=v2), encryption_key=key)
    ShadowEndpoint(stack, "Nvme", production=Variant(model=v1, instance_type="ml.g4dn.xlarge"),
                   shadow=Variant(model=v2, instance_type="ml.g4dn.xlarge"))
    configs = template_of(stack).find_resources("AWS::SageMaker::EndpointConfig")
    keys = {k.split("Config")[0]: c["Properties"].get("KmsKeyId") for k, c in configs.items()}
    assert keys["WithKey"] == {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}
    assert keys["Nvme"] is None
    assert len(template_of(stack).find_resources("AWS::KMS::Key")) == 1


def test_grant_invoke_scopes_to_the_endpoint_arn(full):
    stack = new_stack()
    v1, v2 = two_models(stack)
    endpoint = ShadowEndpoint(stack, "Endpoint", endpoint_name="churn", production=Variant(model=v1),
                              shadow=Variant(model=v2))
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    endpoint.grant_invoke(caller)
    statement, = policy_statements(template_of(stack), "CallerDefaultPolicy")
    assert sorted(actions_of(statement)) == ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"]
    assert statement["Resource"] == {"Ref": stack.get_logical_id(endpoint.resource)}
    assert only(template_of(stack), "AWS::SageMaker::Endpoint")["Properties"]["EndpointName"] == "churn"


@pytest.mark.parametrize("metric_name", sorted(ENDPOINT_METRICS))
def test_every_metric_helper_names_endpoint_variant_namespace_and_statistic(full, metric_name):
    stack, endpoint, _ = full
    helper = "metric_" + {"Invocation4XXErrors": "invocation_4xx_errors", "Invocation5XXErrors": "invocation_5xx_errors",
                          "CPUUtilization": "cpu_utilization", "GPUUtilization": "gpu_utilization",
                          "GPUMemoryUtilization": "gpu_memory_utilization"}.get(
        metric_name, "".join(f"_{c.lower()}" if c.isupper() else c for c in metric_name).lstrip("_"))
    metric = getattr(endpoint, helper)(variant="candidate-v2")
    spec = ENDPOINT_METRICS[metric_name]
    assert (metric.metric_name, metric.namespace, metric.statistic) == (metric_name, spec.namespace, spec.statistic)
    assert metric.period.to_seconds() == 60
    assert stack.resolve(metric.dimensions) == {
        "EndpointName": {"Fn::GetAtt": [stack.get_logical_id(endpoint.resource), "EndpointName"]},
        "VariantName": "candidate-v2"}


def test_metric_defaults_to_production_and_takes_options(full):
    _, endpoint, _ = full
    metric = endpoint.metric_model_latency(statistic="p99", period=cdk.Duration.minutes(5), label="p99")
    assert metric.dimensions["VariantName"] == "production"
    assert (metric.statistic, metric.period.to_seconds(), metric.label) == ("p99", 300, "p99")


def test_metric_rejects_unknown_names_and_variants(full):
    _, endpoint, _ = full
    with pytest.raises(ConfigError, match=r"metric_name must be one of Invocations, .*, got 'Latency'"):
        endpoint.metric("Latency")
    with pytest.raises(ConfigError, match=r"variant must be one of production, candidate-v2, got 'shadow'"):
        endpoint.metric_invocations(variant="shadow")


def test_imported_endpoint_offers_the_same_verbs():
    stack = new_stack(region="us-east-1")
    endpoint = ShadowEndpoint.from_endpoint_name(stack, "Imported", "Churn-Prod", shadow_variant_name="shadow-v3")
    assert isinstance(endpoint, IShadowEndpoint)
    assert endpoint.variant_names == ["AllTraffic", "shadow-v3"]
    assert stack.resolve(endpoint.endpoint_arn) == {"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"}, ":sagemaker:us-east-1:123456789012:endpoint/churn-prod"]]}
    metric = endpoint.metric_invocation_model_errors(variant="shadow-v3")
    assert metric.dimensions == {"EndpointName": "Churn-Prod", "VariantName": "shadow-v3"}
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    endpoint.grant_invoke(caller)
    assert policy_statements(template_of(stack), "CallerDefaultPolicy")[0]["Resource"]["Fn::Join"][1][-1] == \
        ":sagemaker:us-east-1:123456789012:endpoint/churn-prod"


def test_under_provisioned_shadow_is_warned_about():
    stack = new_stack()
    v1, v2 = two_models(stack)
    ShadowEndpoint(stack, "Endpoint", production=Variant(model=v1, instance_count=2), shadow=Variant(model=v2),
                   sampling_percent=100)
    assertions.Annotations.from_stack(stack).has_warning(
        "/Test/Endpoint", assertions.Match.string_like_regexp("each shadow instance gets 2.00x the requests"))


def test_balanced_shadow_is_not_warned_about(full):
    stack, _, _ = full
    assert assertions.Annotations.from_stack(stack).find_warning("*", assertions.Match.any_value()) == []


@pytest.fixture(scope="module")
def shadows_of_production():
    """Shadows serving production's model (the same ServingModel, or an equal one), declared as an A/A test or not."""
    stack = new_stack()
    v1, v2 = two_models(stack)
    twin = ServingModel(stack, "V1Twin", image=XGBOOST_URI, model_data="s3://models-1/v1/model.tar.gz")
    ShadowEndpoint(stack, "Same", production=Variant(model=v1), shadow=Variant(model=v1))
    ShadowEndpoint(stack, "Twin", production=Variant(model=v1), shadow=Variant(model=twin))
    ShadowEndpoint(stack, "AA", production=Variant(model=v1), shadow=Variant(model=v1), aa_test=True)
    ShadowEndpoint(stack, "Candidate", production=Variant(model=v1), shadow=Variant(model=v2))
    return {w.id: w.entry.data for w in assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("serves production's model"))}


def test_a_shadow_serving_productions_model_is_warned_about(shadows_of_production):
    assert sorted(shadows_of_production) == ["/Test/Same", "/Test/Twin"]
    assert shadows_of_production["/Test/Same"].startswith(
        "the shadow variant 'shadow' serves production's model (the same ServingModel 'Test/V1'), so the comparison "
        "tells nothing about a candidate; give the shadow the candidate's ServingModel, or pass aa_test=True")
    assert "ServingModels 'Test/V1' and 'Test/V1Twin' have the same image, model data and environment" in \
        shadows_of_production["/Test/Twin"]


def test_a_declared_aa_test_or_a_candidate_model_is_not_warned_about(shadows_of_production):
    assert "/Test/AA" not in shadows_of_production and "/Test/Candidate" not in shadows_of_production
