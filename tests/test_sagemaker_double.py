"""shadow_emulator.SageMakerDouble: the moto gaps it fills, each checked with boto3 calls."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import SAGEMAKER_ROLE, create_churn_endpoint
from moto import mock_aws

from shadow_emulator import SageMakerDouble

REGION = "us-east-1"


def variant(name: str, model: str, instance_type: str = "ml.m5.xlarge", count: int = 1, weight: float = 1.0) -> dict:
    return {"VariantName": name, "ModelName": model, "InstanceType": instance_type,
            "InitialInstanceCount": count, "InitialVariantWeight": weight}


@pytest.fixture
def sagemaker():
    with mock_aws(), SageMakerDouble(update_polls=2) as double:
        client = boto3.client("sagemaker", region_name=REGION)
        create_churn_endpoint(client, model_data_url=lambda model: f"s3://m/{model}.tar.gz")
        client.create_endpoint_config(EndpointConfigName="promoted",
                                      ProductionVariants=[variant("production", "churn-v2", count=2)])
        yield client, double


def test_shadow_variants_survive_in_config_and_endpoint(sagemaker):
    client, _ = sagemaker
    config = client.describe_endpoint_config(EndpointConfigName="shadow-config")
    assert [v["VariantName"] for v in config["ShadowProductionVariants"]] == ["shadow"]
    assert config["ShadowProductionVariants"][0]["InitialVariantWeight"] == 0.5
    endpoint = client.describe_endpoint(EndpointName="churn")
    assert endpoint["ShadowProductionVariants"][0]["VariantName"] == "shadow"


def test_update_goes_through_updating_to_in_service_with_the_new_config(sagemaker):
    client, double = sagemaker
    client.update_endpoint(EndpointName="churn", EndpointConfigName="promoted")
    assert client.describe_endpoint(EndpointName="churn")["EndpointStatus"] == "Updating"
    final = client.describe_endpoint(EndpointName="churn")
    assert (final["EndpointStatus"], final["EndpointConfigName"]) == ("InService", "promoted")
    assert "ShadowProductionVariants" not in final
    assert ("UpdateEndpoint", {"EndpointName": "churn", "EndpointConfigName": "promoted"}) in double.calls


def test_failed_update_rolls_back_to_the_old_config(sagemaker):
    client, double = sagemaker
    double.fail_next_update("churn")
    client.update_endpoint(EndpointName="churn", EndpointConfigName="promoted")
    client.describe_endpoint(EndpointName="churn")
    final = client.describe_endpoint(EndpointName="churn")
    assert (final["EndpointStatus"], final["EndpointConfigName"]) == ("InService", "shadow-config")
    assert "rolled back" in final["FailureReason"]


def test_failed_update_can_leave_the_endpoint_failed(sagemaker):
    client, double = sagemaker
    double.fail_next_update("churn", mode="fail")
    client.update_endpoint(EndpointName="churn", EndpointConfigName="promoted")
    for _ in range(2):
        status = client.describe_endpoint(EndpointName="churn")["EndpointStatus"]
    assert status == "Failed"
    with pytest.raises(ValueError, match=r"mode must be 'rollback' or 'fail'"):
        double.fail_next_update("churn", mode="explode")


def test_update_is_refused_while_updating_and_for_unknown_configs(sagemaker):
    client, _ = sagemaker
    with pytest.raises(ClientError, match=r"Could not find endpoint configuration 'nope'"):
        client.update_endpoint(EndpointName="churn", EndpointConfigName="nope")
    client.update_endpoint(EndpointName="churn", EndpointConfigName="promoted")
    with pytest.raises(ClientError, match=r"Cannot update in-progress endpoint 'churn'"):
        client.update_endpoint(EndpointName="churn", EndpointConfigName="promoted")


def test_update_is_refused_when_it_removes_an_autoscaled_variant(sagemaker):
    client, _ = sagemaker
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    scaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId="endpoint/churn/variant/shadow",
                                     ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                                     MinCapacity=1, MaxCapacity=2)
    with pytest.raises(ClientError, match=r"variant 'shadow' is registered with Application Auto Scaling"):
        client.update_endpoint(EndpointName="churn", EndpointConfigName="promoted")
    scaling.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId="endpoint/churn/variant/shadow",
                                       ScalableDimension="sagemaker:variant:DesiredInstanceCount")
    client.update_endpoint(EndpointName="churn", EndpointConfigName="promoted")


def test_throttling_is_injected_per_operation(sagemaker):
    client, double = sagemaker
    double.throttle("UpdateEndpoint", times=2)
    for _ in range(2):
        with pytest.raises(ClientError) as error:
            boto3.client("sagemaker", region_name=REGION, config=botocore_no_retries()).update_endpoint(
                EndpointName="churn", EndpointConfigName="promoted")
        assert error.value.response["Error"]["Code"] == "ThrottlingException"
    client.update_endpoint(EndpointName="churn", EndpointConfigName="promoted")


def botocore_no_retries():
    from botocore.config import Config

    return Config(retries={"total_max_attempts": 1})


def test_shadow_rules_are_enforced(sagemaker):
    client, _ = sagemaker
    with pytest.raises(ClientError, match=r"ShadowProductionVariants takes at most one variant"):
        client.create_endpoint_config(EndpointConfigName="two", ProductionVariants=[variant("p", "churn-v1")],
                                      ShadowProductionVariants=[variant("s1", "churn-v2"), variant("s2", "churn-v2")])
    with pytest.raises(ClientError, match=r"ProductionVariants must hold exactly one variant"):
        client.create_endpoint_config(EndpointConfigName="ab", ShadowProductionVariants=[variant("s", "churn-v2")],
                                      ProductionVariants=[variant("a", "churn-v1"), variant("b", "churn-v1")])


def test_requests_are_validated_against_botocores_model(sagemaker):
    from shadow_emulator import validate_request

    with pytest.raises(Exception, match=r"Invalid type for parameter EndpointName"):
        validate_request("UpdateEndpoint", {"EndpointName": 5, "EndpointConfigName": "x"})
    with pytest.raises(Exception, match=r"Missing required parameter"):
        validate_request("UpdateEndpoint", {"EndpointName": "churn"})


def experiment(name: str = "exp", sampling: int = 50) -> dict:
    infra = {"InfrastructureType": "RealTimeInference",
             "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}
    return {"Name": name, "Type": "ShadowMode", "RoleArn": SAGEMAKER_ROLE, "EndpointName": "plain",
            "ModelVariants": [{"ModelName": "churn-v1", "VariantName": "AllTraffic", "InfrastructureConfig": infra},
                              {"ModelName": "churn-v2", "VariantName": "shadow", "InfrastructureConfig": infra}],
            "ShadowModeConfig": {"SourceModelVariantName": "AllTraffic", "ShadowModelVariants": [
                {"ShadowModelVariantName": "shadow", "SamplingPercentage": sampling}]}}


@pytest.fixture
def plain(sagemaker):
    client, double = sagemaker
    client.create_endpoint_config(EndpointConfigName="plain-config",
                                  ProductionVariants=[variant("AllTraffic", "churn-v1", count=2)])
    client.create_endpoint(EndpointName="plain", EndpointConfigName="plain-config")
    return client, double


def test_experiment_runs_with_its_shadow_and_is_listed(plain):
    client, _ = plain
    arn = client.create_inference_experiment(**experiment())["InferenceExperimentArn"]
    described = client.describe_inference_experiment(Name="exp")
    assert (described["Arn"], described["Status"]) == (arn, "Running")
    assert described["EndpointMetadata"]["EndpointName"] == "plain"
    assert client.describe_endpoint(EndpointName="plain")["ShadowProductionVariants"][0]["VariantName"] == "shadow"
    assert [e["Name"] for e in client.list_inference_experiments()["InferenceExperiments"]] == ["exp"]


def test_stop_with_retain_keeps_production(plain):
    client, _ = plain
    client.create_inference_experiment(**experiment())
    client.stop_inference_experiment(Name="exp", ModelVariantActions={"AllTraffic": "Retain", "shadow": "Remove"})
    described = client.describe_inference_experiment(Name="exp")
    assert described["Status"] == "Completed"
    endpoint = client.describe_endpoint(EndpointName="plain")
    assert endpoint["EndpointConfigName"] == "plain-config" and "ShadowProductionVariants" not in endpoint
    with pytest.raises(ClientError, match=r"is Completed, not Running"):
        client.stop_inference_experiment(Name="exp", ModelVariantActions={"AllTraffic": "Retain", "shadow": "Remove"})


def test_stop_with_promote_moves_the_shadow_model_into_production(plain):
    client, _ = plain
    client.create_inference_experiment(**experiment())
    client.stop_inference_experiment(Name="exp", ModelVariantActions={"AllTraffic": "Remove", "shadow": "Promote"})
    endpoint = client.describe_endpoint(EndpointName="plain")
    config = client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert [(v["VariantName"], v["ModelName"]) for v in config["ProductionVariants"]] == [("AllTraffic", "churn-v2")]
    statuses = {v["VariantName"]: v["Status"] for v in client.describe_inference_experiment(Name="exp")["ModelVariants"]}
    assert statuses == {"AllTraffic": "NotDeployed", "shadow": "Deployed"}


@pytest.mark.parametrize(("actions", "message"), [
    ({"AllTraffic": "Promote", "shadow": "Remove"}, r"is not a valid outcome"),
    ({"shadow": "Remove"}, r"must give an action for 'AllTraffic' and 'shadow'"),
])
def test_stop_refuses_impossible_actions(plain, actions, message):
    client, _ = plain
    client.create_inference_experiment(**experiment())
    with pytest.raises(ClientError, match=message):
        client.stop_inference_experiment(Name="exp", ModelVariantActions=actions)


def test_experiment_errors(plain):
    client, _ = plain
    with pytest.raises(ClientError, match=r"Could not find endpoint 'nowhere'"):
        client.create_inference_experiment(**{**experiment(), "EndpointName": "nowhere"})
    client.create_inference_experiment(**experiment())
    with pytest.raises(ClientError, match=r"already exists"):
        client.create_inference_experiment(**experiment())
    with pytest.raises(ClientError, match=r"Could not find inference experiment 'other'"):
        client.describe_inference_experiment(Name="other")
    with pytest.raises(ClientError, match=r"SamplingPercentage must be at most 100, got 500"):
        client.create_inference_experiment(**experiment("exp2", sampling=500))


def test_uninstall_restores_moto():
    from moto.sagemaker.responses import SageMakerResponse

    before = dict(SageMakerResponse.__dict__)
    with SageMakerDouble():
        assert hasattr(SageMakerResponse, "update_endpoint")
    assert not hasattr(SageMakerResponse, "update_endpoint")
    assert SageMakerResponse.__dict__["describe_endpoint"] is before["describe_endpoint"]


def test_cloudformation_keeps_shadow_variants_capture_and_the_endpoint_name(monkeypatch):
    """The example's endpoint deployed through moto's CloudFormation, as `cdk deploy` does locally."""
    import json as json_

    from conftest import XGBOOST_URI, new_stack, template_of

    from shadow_constructs import DataCapture, ServingModel, ShadowEndpoint, Variant

    stack = new_stack()
    v1, v2 = (ServingModel(stack, n, image=XGBOOST_URI, model_data=f"s3://m-1/{n}.tar.gz") for n in ("V1", "V2"))
    ShadowEndpoint(stack, "Endpoint", endpoint_name="churn-local", production=Variant(model=v1, instance_count=2),
                   shadow=Variant(model=v2), sampling_percent=50, data_capture=DataCapture(), encryption_key=None)
    template = template_of(stack).to_json()
    template.pop("Rules", None)
    template.pop("Parameters", None)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(), SageMakerDouble():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="local", TemplateBody=json_.dumps(template), Capabilities=["CAPABILITY_IAM"])
        client = boto3.client("sagemaker", region_name=REGION)
        endpoint = client.describe_endpoint(EndpointName="churn-local")
        config = client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        assert [(v["VariantName"], v["InitialVariantWeight"]) for v in config["ShadowProductionVariants"]] == \
            [("shadow", 0.5)]
        assert config["DataCaptureConfig"]["DestinationS3Uri"].endswith("/datacapture")
        assert endpoint["ShadowProductionVariants"][0]["VariantName"] == "shadow"
