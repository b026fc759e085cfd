"""Every ConfigError rule: the bad input, the parameter named, the value shown."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from conftest import XGBOOST_URI, new_stack

from shadow_constructs import (
    CapacitySize,
    CaptureStore,
    ConfigError,
    DataCapture,
    DeploymentGuardrails,
    ServingModel,
    ShadowEndpoint,
    TrafficRouting,
    Variant,
    VariantAutoscaling,
)

STACK = new_stack()
MODEL = ServingModel(STACK, "M", image=XGBOOST_URI)
MODEL_2 = ServingModel(STACK, "M2", image=XGBOOST_URI)
_ids = iter(range(10_000))


def fresh_id() -> str:
    return f"E{next(_ids)}"


def alarm(i: int) -> cloudwatch.Alarm:
    return cloudwatch.Alarm(STACK, f"Alarm{fresh_id()}{i}", metric=cloudwatch.Metric(namespace="X", metric_name="Y"),
                            threshold=1, evaluation_periods=1)


VARIANT_CASES = [
    ({"model": "m"}, r"model must be a ServingModel, got 'm'"),
    ({"instance_type": "m5.xlarge"}, r"instance_type must be a SageMaker instance type like 'ml.m5.xlarge', got 'm5.xlarge'"),
    ({"instance_type": None}, r"instance_type must be a string, got None"),
    ({"instance_count": 0}, r"instance_count must be at least 1, got 0"),
    ({"instance_count": 1.5}, r"instance_count must be an integer, got 1.5 \(float\)"),
    ({"instance_count": True}, r"instance_count must be an integer, got True"),
    ({"variant_name": "has_underscore"}, r"variant_name must match \[a-zA-Z0-9\]\(-\*\[a-zA-Z0-9\]\)\{0,62\} .*, got 'has_underscore'"),
    ({"variant_name": "-leading"}, r"variant_name must match .*, got '-leading'"),
    ({"variant_name": "x" * 64}, r"variant_name must be 1 to 63 characters long, got 64 characters"),
    ({"variant_name": ""}, r"variant_name must be 1 to 63 characters long, got 0 characters"),
    ({"weight": 0}, r"weight must be positive, got 0"),
    ({"volume_size_in_gb": 513}, r"volume_size_in_gb must be between 1 and 512, got 513"),
    ({"volume_size_in_gb": 0}, r"volume_size_in_gb must be between 1 and 512, got 0"),
    ({"model_data_download_timeout": cdk.Duration.seconds(59)},
     r"model_data_download_timeout must be between 1 minute and 1 hour, got 59 seconds"),
    ({"container_startup_health_check_timeout": cdk.Duration.hours(2)},
     r"container_startup_health_check_timeout must be between 1 minute and 1 hour, got 2 hours"),
    ({"model_data_download_timeout": 600}, r"model_data_download_timeout must be an aws_cdk.Duration, got 600"),
    ({"routing_strategy": "RANDOM"}, r"routing_strategy must be a RoutingStrategy, got 'RANDOM'"),
    ({"autoscaling": {"max": 3}}, r"autoscaling must be a VariantAutoscaling, got dict"),
    ({"instance_count": 5, "autoscaling": VariantAutoscaling(max_capacity=4, target_invocations_per_instance=10)},
     r"instance_count must lie within autoscaling's min_capacity..max_capacity \(1..4\), got 5"),
]


@pytest.mark.parametrize(("kwargs", "message"), VARIANT_CASES)
def test_variant_rules(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Variant(**{"model": MODEL, **kwargs})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_capacity": 0, "target_invocations_per_instance": 5}, r"max_capacity must be at least 1, got 0"),
    ({"min_capacity": 3, "max_capacity": 2, "target_invocations_per_instance": 5},
     r"min_capacity must not exceed max_capacity, got 3 > 2"),
    ({"max_capacity": 2, "target_invocations_per_instance": 0}, r"target_invocations_per_instance must be positive, got 0"),
    ({"max_capacity": 2, "target_invocations_per_instance": 5, "scale_in_cooldown": cdk.Duration.days(2)},
     r"scale_in_cooldown must be between 0 seconds and 1 day, got 2 days"),
    ({"max_capacity": 2, "target_invocations_per_instance": 5, "disable_scale_in": "no"},
     r"disable_scale_in must be a bool, got 'no'"),
])
def test_autoscaling_rules(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        VariantAutoscaling(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"store": "s", "bucket": "b"}, r"give either store or bucket, not both"),
    ({"store": "bucket-name"}, r"store must be a CaptureStore, got 'bucket-name'"),
    ({"encryption_key": "k"}, r"encryption_key goes with bucket; a CaptureStore brings its own key"),
    ({"prefix": "/datacapture/"}, r"prefix must be S3 key segments without leading or trailing '/', got '/datacapture/'"),
    ({"prefix": "a//b"}, r"prefix must be S3 key segments .*, got 'a//b'"),
    ({"capture_input": False, "capture_output": False},
     r"capture_input and capture_output are both False: nothing would be captured"),
    ({"sampling_percent": 101}, r"sampling_percent must be between 0 and 100, got 101"),
    ({"sampling_percent": -1}, r"sampling_percent must be between 0 and 100, got -1"),
    ({"csv_content_types": []}, r"csv_content_types must list 1 to 10 content types, got 0"),
    ({"json_content_types": [f"application/x{i}" for i in range(11)]},
     r"json_content_types must list 1 to 10 content types, got 11"),
    ({"csv_content_types": "text/csv"}, r"csv_content_types must be a list of content types, got 'text/csv'"),
    ({"csv_content_types": ["csv"]}, r"csv_content_types entries must be content types like 'text/csv', got 'csv'"),
])
def test_data_capture_rules(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DataCapture(**kwargs)


def test_data_capture_both_destinations_message_is_exact():
    bucket = s3.Bucket.from_bucket_name(STACK, fresh_id(), "b-1")
    with pytest.raises(ConfigError) as error:
        DataCapture(store=CaptureStore(STACK, fresh_id()), bucket=bucket)
    assert error.value.problems == ["give either store or bucket, not both"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"expiration": cdk.Duration.hours(2)}, r"expiration must be between 1 day and \d+ days, got 2 hours"),
    ({"infrequent_access_after": cdk.Duration.days(10)},
     r"infrequent_access_after must be between 30 days and \d+ days, got 10 days"),
    ({"expiration": cdk.Duration.days(40), "infrequent_access_after": cdk.Duration.days(60)},
     r"infrequent_access_after must be shorter than expiration, got 60 days >= 40 days"),
    ({"destroy_on_removal": "yes"}, r"destroy_on_removal must be a bool, got 'yes'"),
    ({"bucket_name": "Upper_Case"}, r"bucket_name must be a valid S3 bucket name .*, got 'Upper_Case'"),
    ({"encryption_key": "alias/x"}, r"encryption_key must be an aws_kms.IKey, got 'alias/x'"),
])
def test_capture_store_rules(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        CaptureStore(STACK, fresh_id(), **kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"traffic_routing": "canary"}, r"traffic_routing must be a TrafficRouting, got 'canary'"),
    ({"traffic_routing": TrafficRouting.canary(CapacitySize.percent(60))},
     r"canary size must be between 1% and 50% of the fleet, got 60%"),
    ({"traffic_routing": TrafficRouting.linear(CapacitySize.percent(5))},
     r"linear step must be between 10% and 50% of the fleet, got 5%"),
    ({"traffic_routing": TrafficRouting.linear(CapacitySize.percent(55))},
     r"linear step must be between 10% and 50% of the fleet, got 55%"),
    ({"traffic_routing": TrafficRouting.canary(CapacitySize.instances(0))}, r"canary size must be at least 1, got 0"),
    ({"traffic_routing": TrafficRouting.all_at_once(cdk.Duration.hours(2))},
     r"traffic_routing wait must be between 0 seconds and 1 hour, got 2 hours"),
    ({"termination_wait": cdk.Duration.hours(2)}, r"termination_wait must be between 0 seconds and 1 hour, got 2 hours"),
    ({"maximum_execution_timeout": cdk.Duration.minutes(5)},
     r"maximum_execution_timeout must be between 10 minutes and 8 hours, got 5 minutes"),
    ({"maximum_execution_timeout": cdk.Duration.hours(9)},
     r"maximum_execution_timeout must be between 10 minutes and 8 hours, got 9 hours"),
    ({"rollback_alarms": "my-alarm"}, r"rollback_alarms must be a list of alarms, got 'my-alarm'"),
    ({"rollback_alarms": ["my-alarm"]}, r"rollback_alarms entries must be CloudWatch alarms, got 'my-alarm'"),
])
def test_deployment_guardrail_rules(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DeploymentGuardrails(**kwargs)


def test_more_than_ten_rollback_alarms_are_rejected():
    with pytest.raises(ConfigError, match=r"rollback_alarms takes at most 10 alarms, got 11"):
        DeploymentGuardrails(rollback_alarms=[alarm(i) for i in range(11)])


def production(**kwargs) -> Variant:
    return Variant(model=MODEL, **kwargs)


def shadow(**kwargs) -> Variant:
    return Variant(model=MODEL_2, **kwargs)


ENDPOINT_CASES = [
    (lambda: {"production": "v1"}, r"production must be a Variant or a list of Variants, got 'v1'"),
    (lambda: {"production": [production(), "v2"]}, r"production must hold Variants only, got 'v2'"),
    (lambda: {"production": []}, r"production must hold at least one Variant, got an empty list"),
    (lambda: {"production": [production() for _ in range(11)]}, r"production takes at most 10 Variants, got 11"),
    (lambda: {"production": [production(), production(variant_name="b")], "shadow": shadow()},
     r"production must be exactly one Variant when there is a shadow, got 2"),
    (lambda: {"production": production(), "shadow": "v2"}, r"shadow must be a Variant, got 'v2'"),
    (lambda: (lambda v: {"production": v, "shadow": v})(production()),
     r"shadow must be a different Variant from production, got the same object for both"),
    (lambda: {"production": production(), "shadow": shadow(weight=0.5)},
     r"shadow weight comes from sampling_percent; leave Variant\(weight=...\) unset on the shadow, got 0.5"),
    (lambda: {"production": production(variant_name="main"), "shadow": shadow(variant_name="main")},
     r"variant_name must be unique within the endpoint, got 'main' more than once"),
    (lambda: {"production": [production(), production(variant_name="production")]},
     r"variant_name must be unique within the endpoint, got 'production' more than once"),
    (lambda: {"production": production(), "shadow": shadow(instance_type="ml.inf1.xlarge")},
     r"shadow instance_type 'ml.inf1.xlarge' is not allowed in a shadow test \(SageMaker rejects ml.inf1 instances"),
    (lambda: {"production": production(instance_type="ml.inf1.2xlarge"), "shadow": shadow()},
     r"production instance_type 'ml.inf1.2xlarge' is not allowed in a shadow test"),
    (lambda: {"production": production(), "shadow": shadow(), "sampling_percent": 0},
     r"sampling_percent must be between 1 and 100, got 0"),
    (lambda: {"production": production(), "shadow": shadow(), "sampling_percent": 101},
     r"sampling_percent must be between 1 and 100, got 101"),
    (lambda: {"production": production(), "shadow": shadow(), "sampling_percent": 50.0},
     r"sampling_percent must be an integer, got 50.0 \(float\)"),
    (lambda: {"production": production(), "sampling_percent": 50},
     r"sampling_percent applies only with a shadow variant, got 50 without shadow"),
    (lambda: {"production": production(), "shadow": shadow(), "data_capture": True},
     r"data_capture must be a DataCapture, got True"),
    (lambda: {"production": production(), "shadow": shadow(), "deployment": "blue-green"},
     r"deployment must be a DeploymentGuardrails, got 'blue-green'"),
    (lambda: {"production": production(instance_count=4), "shadow": shadow(),
              "deployment": DeploymentGuardrails(traffic_routing=TrafficRouting.canary(CapacitySize.instances(3)))},
     r"canary size must be at most 50% of the production fleet \(4 instances\), got 3 instance\(s\)"),
    (lambda: {"production": production(instance_count=2), "shadow": shadow(),
              "deployment": DeploymentGuardrails(traffic_routing=TrafficRouting.linear(CapacitySize.instances(2)))},
     r"linear step must be 10-50% of the production fleet \(2 instances\), got 2 instance\(s\)"),
    (lambda: {"production": production(instance_count=20), "shadow": shadow(),
              "deployment": DeploymentGuardrails(traffic_routing=TrafficRouting.linear(CapacitySize.instances(1)))},
     r"linear step must be 10-50% of the production fleet \(20 instances\), got 1 instance\(s\)"),
    (lambda: {"production": production(instance_type="ml.g5.xlarge"), "shadow": shadow(),
              "encryption_key": kms.Key(STACK, fresh_id())},
     r"encryption_key cannot be used with instance types that have local NVMe storage .*, got ml.g5.xlarge"),
    (lambda: {"production": production(), "encryption_key": "alias/aws/sagemaker"},
     r"encryption_key must be an aws_kms.IKey, got 'alias/aws/sagemaker'"),
    (lambda: {"production": production(), "endpoint_name": "churn_prod"},
     r"endpoint_name must be 1-63 letters, digits and inner hyphens, got 'churn_prod'"),
    # Instance types SageMaker does not offer for real-time endpoints (botocore's list), with the nearest ones.
    (lambda: {"production": production(instance_type="ml.m5.huge"), "shadow": shadow()},
     r"production instance_type must be a SageMaker real-time instance type, got 'ml.m5.huge'; "
     r"nearest: ml.m5.large, .*ml.m5.xlarge"),
    (lambda: {"production": production(), "shadow": shadow(instance_type="ml.g4dn.xlarg")},
     r"shadow instance_type must be a SageMaker real-time instance type, got 'ml.g4dn.xlarg'; nearest: ml.g4dn.xlarge"),
    (lambda: {"production": [production(), production(variant_name="b", instance_type="ml.c5.medium")]},
     r"production\[1\] instance_type must be a SageMaker real-time instance type, got 'ml.c5.medium'; nearest: "),
    (lambda: {"production": production(), "shadow": shadow(),
              "promoted_instance_override": {"InstanceType": "ml.m5.huge"}},
     r"promoted_instance_override InstanceType must be a SageMaker real-time instance type, got 'ml.m5.huge'; "
     r"nearest: ml.m5.large"),
    (lambda: {"production": production(), "shadow": shadow(), "aa_test": "yes"}, r"aa_test must be a bool, got 'yes'"),
    (lambda: {"production": production(), "aa_test": True},
     r"aa_test applies only with a shadow variant, got True without shadow"),
]


@pytest.mark.parametrize(("make_kwargs", "message"), ENDPOINT_CASES)
def test_shadow_endpoint_rules(make_kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ShadowEndpoint(STACK, fresh_id(), **make_kwargs())


def test_shadow_endpoint_reports_every_problem_at_once_and_names_the_construct():
    with pytest.raises(ConfigError) as error:
        ShadowEndpoint(STACK, "Many", production=production(variant_name="same"),
                       shadow=shadow(variant_name="same", instance_type="ml.inf1.xlarge"),
                       sampling_percent=200, endpoint_name="bad name")
    assert len(error.value.problems) == 4
    assert str(error.value).startswith("ShadowEndpoint 'Test/Many': 4 problems:\n  - ")
    assert isinstance(error.value, ValueError)


def test_instance_types_are_checked_against_botocores_list_once():
    from shadow_constructs.variant import realtime_instance_types

    assert {"ml.m5.xlarge", "ml.inf1.xlarge", "ml.g5.xlarge"} <= set(realtime_instance_types())
    assert realtime_instance_types() is realtime_instance_types()  # loaded once, cached


def test_an_instance_type_token_is_left_to_deploy():
    ShadowEndpoint(STACK, fresh_id(), production=production(instance_type=cdk.Token.as_string(cdk.Aws.NO_VALUE)))


ENV_A = cdk.Environment(account="111111111111", region="us-east-1")


def endpoint_in(stack: cdk.Stack, name: str, construct_id: str = "Endpoint") -> ShadowEndpoint:
    return ShadowEndpoint(stack, construct_id, endpoint_name=name,
                          production=Variant(model=ServingModel(stack, f"{construct_id}Model", image=XGBOOST_URI)))


@pytest.mark.parametrize(("second_env", "name", "message"), [
    (None, "churn", r"ShadowEndpoint 'Second/Endpoint': endpoint_name 'churn' is already the name of ShadowEndpoint "
                    r"'First/Endpoint' \(stack 'First'\) possibly in the same account and region \(an "
                    r"environment-agnostic stack deploys to any\): SageMaker endpoint names are unique per account "
                    r"and region \(case-insensitively\), so deploying both would fail"),
    (None, "CHURN", r"endpoint_name 'CHURN' is already the name of ShadowEndpoint 'First/Endpoint'"),
    (ENV_A, "churn", r"endpoint_name 'churn' is already the name of ShadowEndpoint 'First/Endpoint' "
                     r"\(stack 'First'\) possibly in the same account and region"),
], ids=["agnostic", "case-insensitive", "agnostic-and-explicit"])
def test_an_endpoint_name_taken_in_the_same_environment_is_refused(second_env, name, message):
    app = cdk.App()
    endpoint_in(cdk.Stack(app, "First"), "churn")
    with pytest.raises(ConfigError, match=message):
        endpoint_in(cdk.Stack(app, "Second", env=second_env), name)


def test_an_endpoint_name_taken_in_the_same_stack_is_refused_naming_both():
    stack = new_stack("Same", region="us-east-1")
    endpoint_in(stack, "churn", "A")
    with pytest.raises(ConfigError, match=r"ShadowEndpoint 'Same/B': endpoint_name 'churn' is already the name of "
                                          r"ShadowEndpoint 'Same/A' \(stack 'Same'\) in the same account and region:"):
        endpoint_in(stack, "churn", "B")


@pytest.mark.parametrize(("first_env", "second"), [
    (ENV_A, lambda app: cdk.Stack(app, "Second", env=cdk.Environment(account="111111111111", region="eu-west-1"))),
    (ENV_A, lambda app: cdk.Stack(app, "Second", env=cdk.Environment(account="222222222222", region="us-east-1"))),
    # Two pipeline stages deploying one stack (one stack_name) in two phases: one endpoint, not two.
    (None, lambda app: cdk.Stack(cdk.Stage(app, "Promoted"), "Churn", stack_name="First")),
], ids=["other-region", "other-account", "same-stack-name"])
def test_an_endpoint_name_may_repeat_in_other_environments_or_the_same_stack(first_env, second):
    app = cdk.App()
    endpoint_in(cdk.Stack(app, "First", env=first_env), "churn")
    endpoint_in(second(app), "churn")


def test_token_endpoint_names_and_failed_endpoints_hold_no_name():
    stack = new_stack("Tokens")
    endpoint_in(stack, cdk.Aws.STACK_NAME, "A")
    endpoint_in(stack, cdk.Aws.STACK_NAME, "B")
    with pytest.raises(ConfigError):
        ShadowEndpoint(stack, "Failed", endpoint_name="churn", production=endpoint_in(stack, "x").production,
                       sampling_percent=5)
    endpoint_in(stack, "churn", "C")


def test_add_rollback_alarm_needs_guardrails():
    endpoint = ShadowEndpoint(STACK, fresh_id(), production=production(), shadow=shadow())
    with pytest.raises(ConfigError, match=r"add_rollback_alarm needs deployment guardrails"):
        endpoint.add_rollback_alarm(alarm(0))


def test_add_rollback_alarm_rejects_non_alarms():
    endpoint = ShadowEndpoint(STACK, fresh_id(), production=production(), shadow=shadow(),
                              deployment=DeploymentGuardrails())
    with pytest.raises(ConfigError, match=r"alarm must be a CloudWatch alarm, got 'my-alarm'"):
        endpoint.add_rollback_alarm("my-alarm")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"endpoint_name": "bad_name"}, r"endpoint_name must be 1-63 letters, digits and inner hyphens, got 'bad_name'"),
    ({"endpoint_name": "ok", "production_variant_name": "a b"}, r"production_variant_name must match .*, got 'a b'"),
    ({"endpoint_name": "ok", "shadow_variant_name": "AllTraffic"},
     r"shadow_variant_name must differ from production_variant_name, got 'AllTraffic' for both"),
])
def test_imported_endpoint_rules(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ShadowEndpoint.from_endpoint_name(STACK, fresh_id(), **kwargs)


def test_remaining_value_errors_name_what_was_given():
    from shadow_constructs import ModelData, ModelImage, ShadowMetricFactory

    with pytest.raises(ConfigError, match=r"uri must be a string, got 42"):
        ModelImage.from_uri(42)
    with pytest.raises(ConfigError, match=r"path must be a file or folder path, got 7"):
        ModelData.from_asset(7)
    imported = ShadowEndpoint.from_endpoint_name(STACK, fresh_id(), "churn", shadow_variant_name="shadow")
    with pytest.raises(ConfigError, match=r"name must be an instance metric, got 'Invocations'"):
        ShadowMetricFactory(imported).instance_metric("Invocations", "shadow")


def test_workflow_rejects_wrong_kinds_of_collaborators():
    from shadow_constructs import PromotionWorkflow

    imported = ShadowEndpoint.from_endpoint_name(STACK, fresh_id(), "churn", shadow_variant_name="shadow")
    with pytest.raises(ConfigError, match=r"managed_test must be a ManagedShadowTest, got 'exp-1'"):
        PromotionWorkflow(STACK, fresh_id(), endpoint=imported, managed_test="exp-1")
    with pytest.raises(ConfigError, match=r"report_store must be a CaptureStore, got 'reports'"):
        PromotionWorkflow(STACK, fresh_id(), endpoint=imported, report_store="reports")
    with pytest.raises(ConfigError, match=r"endpoint must be an IShadowEndpoint \(a ShadowEndpoint, created or imported\), got 'churn'"):
        PromotionWorkflow(STACK, fresh_id(), endpoint="churn")
