"""ManagedShadowTestStack: the candidate churn model as a managed shadow test on an existing endpoint."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from shadow_constructs import (
    CaptureStore,
    ConfigError,
    DataCapture,
    ExperimentOutcome,
    ManagedShadowTest,
    ModelData,
    ModelImage,
    PromotionWorkflow,
    ServingModel,
    ShadowEndpoint,
    Variant,
)

from .config import ROOT, ManagedTestConfig, capture_removal, parse_time

OUTCOMES = {"running": ExperimentOutcome.RUNNING, "complete": ExperimentOutcome.COMPLETE_KEEP_PRODUCTION,
            "promote": ExperimentOutcome.COMPLETE_PROMOTE_SHADOW, "cancel": ExperimentOutcome.CANCEL}


class ManagedShadowTestStack(cdk.Stack):
    """Churn model v2 shadowing the production variant of an endpoint that already exists."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ManagedTestConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        problems = []
        if config.endpoint_name is None:
            problems.append("endpoint_name must name the existing endpoint to test on, got None")
        if config.outcome not in OUTCOMES:
            problems.append(f"outcome must be one of {', '.join(OUTCOMES)}, got {config.outcome!r}")
        start = parse_time("start", config.start, problems)
        if problems:
            raise ConfigError("ManagedTestConfig", problems)
        assert config.endpoint_name is not None, "a None endpoint_name added a problem"

        endpoint = ShadowEndpoint.from_endpoint_name(
            self, "Endpoint", config.endpoint_name, production_variant_name=config.production_variant_name,
            shadow_variant_name=config.shadow_variant_name)
        self.shadow_model = ServingModel(
            self, "ShadowModel", image=ModelImage.sagemaker_xgboost(config.xgboost_version),
            model_data=ModelData.from_asset(ROOT / config.shadow_model_artifact), network_isolation=True)
        storage = None
        if config.capture_enabled:
            self.capture_store = CaptureStore(self, "CaptureStore",
                                              removal_policy=capture_removal(config.destroy_capture_on_removal))
            storage = DataCapture(store=self.capture_store)
        self.test = ManagedShadowTest(
            self, "Test", endpoint=endpoint, production_model=config.production_model_name,
            production_instance_type=config.production_instance_type,
            production_instance_count=config.production_instance_count,
            shadow=Variant(model=self.shadow_model, variant_name=config.shadow_variant_name,
                           instance_type=config.shadow_instance_type, instance_count=config.shadow_instance_count),
            sampling_percent=config.sampling_percent, duration=cdk.Duration.hours(config.duration_hours), start=start,
            data_storage=storage, outcome=OUTCOMES[config.outcome])
        self.workflow = PromotionWorkflow(self, "Promotion", endpoint=endpoint, managed_test=self.test,
                                          window=cdk.Duration.hours(config.duration_hours),
                                          criteria=config.promotion_criteria)
        cdk.CfnOutput(self, "ExperimentName", value=self.test.experiment_name)
        cdk.CfnOutput(self, "PromotionStateMachine", value=self.workflow.state_machine.state_machine_arn)
