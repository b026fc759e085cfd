"""Following a promotion in IaC: the promoted phase is exactly what the workflow built, so the next
`cdk deploy` does not revert it; the rolled-back phase leaves production alone."""

from __future__ import annotations

import tempfile

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from conftest import only
from shadow_runtime import promotion

from app import build_app
from shadow_constructs import ConfigError


def endpoint_config(phase: str, **extra) -> dict:
    app = cdk.App(outdir=tempfile.mkdtemp(), context={"shadow-test": {"phase": phase, **extra}, "nag": "false"})
    build_app(app)
    template = assertions.Template.from_json(app.synth().get_stack_by_name("ChurnShadowTest").template)
    return only(template, "AWS::SageMaker::EndpointConfig")["Properties"]


@pytest.mark.parametrize("settings", ["production", "shadow"])
def test_promoted_phase_equals_what_the_workflow_builds(settings):
    shadow_phase = endpoint_config("shadow", promoted_instance_settings=settings, shadow_instance_type="ml.c5.xlarge")
    built = promotion.promoted_config(shadow_phase, "workflow-config", settings)
    promoted = endpoint_config("promoted", promoted_instance_settings=settings, shadow_instance_type="ml.c5.xlarge")
    assert promoted["ProductionVariants"] == built["ProductionVariants"]
    assert "ShadowProductionVariants" not in promoted
    for member in ("DataCaptureConfig", "KmsKeyId"):
        assert promoted[member] == built[member]


def test_rolled_back_phase_is_production_without_the_shadow():
    shadow_phase = endpoint_config("shadow")
    rolled_back = endpoint_config("rolled_back")
    assert rolled_back["ProductionVariants"] == promotion.shadow_removed_config(shadow_phase, "x")["ProductionVariants"]
    assert "ShadowProductionVariants" not in rolled_back


def test_test_end_schedules_the_workflow():
    app = cdk.App(outdir=tempfile.mkdtemp(), context={"shadow-test": {"test_end": "2026-12-02T09:00:00Z"}, "nag": "false"})
    build_app(app)
    template = assertions.Template.from_json(app.synth().get_stack_by_name("ChurnShadowTest").template)
    assert only(template, "AWS::Scheduler::Schedule")["Properties"]["ScheduleExpression"] == "at(2026-12-02T09:00:00)"
    with pytest.raises(ConfigError, match=r"test_end must be an ISO 8601 time like"):
        endpoint_config("shadow", test_end="next week")


def test_unknown_phase_is_rejected():
    with pytest.raises(ConfigError, match=r"phase must be one of shadow, promoted, rolled_back, got 'live'"):
        endpoint_config("live")
    with pytest.raises(ConfigError, match=r"promoted_instance_settings must be production or shadow, got 'biggest'"):
        endpoint_config("promoted", promoted_instance_settings="biggest")
