"""TestPhase in the library: the PROMOTED phase renders exactly the config the workflow builds from the
live SHADOW config, for every instance-settings choice; ROLLED_BACK is production alone."""

from __future__ import annotations

import pytest
from conftest import XGBOOST_URI, new_stack, only, template_of
from shadow_runtime import promotion

from shadow_constructs import (
    CaptureStore,
    ConfigError,
    DataCapture,
    InstanceSettings,
    PromotionWorkflow,
    RoutingStrategy,
    ServingModel,
    ShadowEndpoint,
    TestPhase,
    Variant,
)

OVERRIDE = {"InstanceType": "ml.c5.2xlarge", "InitialInstanceCount": 3}
CHOICES = [(InstanceSettings.PRODUCTION, None), (InstanceSettings.SHADOW, None), (InstanceSettings.PRODUCTION, OVERRIDE)]


def config(phase: TestPhase, settings: InstanceSettings = InstanceSettings.PRODUCTION, override=None) -> dict:
    stack = new_stack(region="us-east-1")
    v1 = ServingModel(stack, "V1", image=XGBOOST_URI)
    v2 = ServingModel(stack, "V2", image=XGBOOST_URI)
    ShadowEndpoint(stack, "Endpoint", endpoint_name="churn",
                   production=Variant(model=v1, instance_type="ml.m5.xlarge", instance_count=2, volume_size_in_gb=20),
                   shadow=Variant(model=v2, instance_type="ml.c5.xlarge", instance_count=1,
                                  routing_strategy=RoutingStrategy.LEAST_OUTSTANDING_REQUESTS),
                   sampling_percent=50, data_capture=DataCapture(store=CaptureStore(stack, "Capture")),
                   phase=phase, promoted_instance_settings=settings, promoted_instance_override=override)
    template = template_of(stack)
    return {"config": only(template, "AWS::SageMaker::EndpointConfig")["Properties"],
            "endpoint": only(template, "AWS::SageMaker::Endpoint")}


@pytest.mark.parametrize(("settings", "override"), CHOICES, ids=["production", "shadow", "override"])
def test_promoted_phase_is_what_the_workflow_builds_from_the_live_shadow_config(settings, override):
    live = config(TestPhase.SHADOW)["config"]  # what DescribeEndpointConfig returns for the SHADOW deploy
    built = promotion.promoted_config(live, "workflow-config", "override" if override else settings.value, override)
    promoted = config(TestPhase.PROMOTED, settings, override)["config"]
    assert promoted["ProductionVariants"] == built["ProductionVariants"]
    assert "ShadowProductionVariants" not in promoted
    for member in ("DataCaptureConfig", "KmsKeyId"):
        assert promoted[member] == built[member]
    variant = promoted["ProductionVariants"][0]
    # The candidate's model under production's name and weight.
    assert variant["VariantName"] == "production" and variant["InitialVariantWeight"] == 1
    assert variant["ModelName"] == live["ShadowProductionVariants"][0]["ModelName"]
    expected_type = {"production": "ml.m5.xlarge", "shadow": "ml.c5.xlarge"}[settings.value] if not override \
        else "ml.c5.2xlarge"
    assert variant["InstanceType"] == expected_type


def test_rolled_back_phase_is_production_alone():
    live = config(TestPhase.SHADOW)["config"]
    rolled_back = config(TestPhase.ROLLED_BACK)
    assert rolled_back["config"]["ProductionVariants"] == \
        promotion.shadow_removed_config(live, "x")["ProductionVariants"]
    assert "ShadowProductionVariants" not in rolled_back["config"]
    # No shadow variant: the key is left out (CloudFormation metadata drops nulls).
    assert rolled_back["endpoint"]["Metadata"]["shadow-constructs"] == {
        "role": "endpoint", "phase": "ROLLED_BACK", "production_variant": "production"}


def test_the_phase_is_marked_on_the_endpoint_for_shadow_test():
    assert config(TestPhase.SHADOW)["endpoint"]["Metadata"]["shadow-constructs"] == {
        "role": "endpoint", "phase": "SHADOW", "production_variant": "production", "shadow_variant": "shadow"}


def endpoint(stack, **kwargs) -> ShadowEndpoint:
    v1 = ServingModel(stack, "V1", image=XGBOOST_URI)
    v2 = ServingModel(stack, "V2", image=XGBOOST_URI)
    arguments = {"production": Variant(model=v1), "shadow": Variant(model=v2), **kwargs}
    return ShadowEndpoint(stack, "Endpoint", **arguments)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"phase": "promoted"}, r"phase must be a TestPhase \(SHADOW, PROMOTED or ROLLED_BACK\), got 'promoted'"),
    ({"phase": TestPhase.PROMOTED, "shadow": None},
     r"phase PROMOTED puts the shadow's model into production, so shadow must be given, got none"),
    ({"promoted_instance_settings": "shadow"}, r"promoted_instance_settings must be an InstanceSettings, got 'shadow'"),
    ({"promoted_instance_override": {"InstanceCount": 2}},
     r"promoted_instance_override must set some of InstanceType, .*, got \['InstanceCount'\]"),
    ({"promoted_instance_override": {"InstanceType": "m5.large"}},
     r"promoted_instance_override InstanceType must be a SageMaker instance type, got 'm5.large'"),
])
def test_bad_phase_settings_are_refused_at_synth(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        endpoint(new_stack(), **kwargs)


def test_the_workflow_takes_the_endpoints_promotion_settings_and_refuses_others():
    stack = new_stack()
    shadowed = endpoint(stack, promoted_instance_settings=InstanceSettings.SHADOW)
    workflow = PromotionWorkflow(stack, "Promotion", endpoint=shadowed)
    assert workflow.instance_settings is InstanceSettings.SHADOW
    with pytest.raises(ConfigError, match=r"instance_settings PRODUCTION differs from the endpoint's "
                                          r"promoted_instance_settings SHADOW"):
        PromotionWorkflow(stack, "Other", endpoint=shadowed, instance_settings=InstanceSettings.PRODUCTION)


def test_a_workflow_needs_the_shadow_phase():
    stack = new_stack()
    promoted = endpoint(stack, phase=TestPhase.PROMOTED)
    with pytest.raises(ConfigError, match=r"endpoint 'Test/Endpoint' renders its PROMOTED phase, which runs no shadow"):
        PromotionWorkflow(stack, "Promotion", endpoint=promoted)
