"""ShadowTestStack: the reference shadow test (churn model v1 in production, v2 as shadow)."""

from __future__ import annotations

import inspect
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from shadow_constructs import (
    CapacitySize,
    CaptureAnalytics,
    CaptureStore,
    ConfigError,
    DataCapture,
    DeploymentGuardrails,
    InconclusiveAction,
    InstanceSettings,
    ModelData,
    ModelImage,
    PromotionWorkflow,
    ServingModel,
    ShadowAlarms,
    ShadowDashboard,
    ShadowEndpoint,
    TestPhase,
    TrafficRouting,
    Variant,
    VariantAutoscaling,
)

from .config import ROOT, ShadowTestConfig, capture_removal, parse_time


class ShadowTestStack(cdk.Stack):
    """Two XGBoost churn models, one endpoint with a shadow variant, and captured traffic."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ShadowTestConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        image = ModelImage.sagemaker_xgboost(config.xgboost_version)
        self.production_model = ServingModel(
            self, "ProductionModel", image=image,
            model_data=ModelData.from_asset(ROOT / config.production_model_artifact),
            network_isolation=config.network_isolation)
        self.shadow_model = ServingModel(
            self, "ShadowModel", image=image,
            model_data=ModelData.from_asset(ROOT / config.shadow_model_artifact),
            network_isolation=config.network_isolation)

        capture = None
        if config.capture_enabled:
            self.capture_store = CaptureStore(
                self, "CaptureStore",
                expiration=cdk.Duration.days(config.capture_expiration_days)
                if config.capture_expiration_days else None,
                removal_policy=capture_removal(config.destroy_capture_on_removal))
            capture = DataCapture(store=self.capture_store, prefix=config.capture_prefix,
                                  sampling_percent=config.capture_sampling_percent)

        phases = {phase.value.lower(): phase for phase in TestPhase}
        settings = {setting.value: setting for setting in InstanceSettings}
        problems = [f"phase must be one of {', '.join(phases)}, got {config.phase!r}"] if config.phase not in phases else []
        if config.promoted_instance_settings not in settings:
            problems.append(f"promoted_instance_settings must be production or shadow, "
                            f"got {config.promoted_instance_settings!r}")
        test_end = parse_time("test_end", config.test_end, problems)
        inconclusive = {action.value: action for action in InconclusiveAction}
        if config.promotion_on_inconclusive not in inconclusive:
            problems.append(f"promotion_on_inconclusive must be one of {', '.join(inconclusive)}, "
                            f"got {config.promotion_on_inconclusive!r}")
        min_agreement = (config.promotion_criteria or {}).get("min_agreement")
        if min_agreement is not None and not config.capture_enabled:
            problems.append(f"promotion_criteria min_agreement={min_agreement!r} judges "
                            "the captured answers, but capture_enabled is false: set capture_enabled true or drop "
                            "min_agreement")
        scaling_keys = set(inspect.signature(VariantAutoscaling).parameters)
        unknown = sorted(set(config.production_autoscaling or {}) - scaling_keys)
        if unknown:
            problems.append(f"production_autoscaling has unknown keys {unknown}; known: {', '.join(sorted(scaling_keys))}")
        if problems:
            raise ConfigError("ShadowTestConfig", problems)
        phase = phases[config.phase]
        scaling = VariantAutoscaling(**{"min_capacity": config.production_instance_count,
                                        **config.production_autoscaling}) if config.production_autoscaling else None
        self.endpoint = ShadowEndpoint(
            self, "Endpoint",
            endpoint_name=config.endpoint_name,
            production=Variant(model=self.production_model, instance_type=config.production_instance_type,
                               instance_count=config.production_instance_count, autoscaling=scaling),
            shadow=Variant(model=self.shadow_model, instance_type=config.shadow_instance_type,
                           instance_count=config.shadow_instance_count),
            sampling_percent=config.sampling_percent,
            data_capture=capture,
            deployment=DeploymentGuardrails(traffic_routing=_routing(config)),
            phase=phase,
            promoted_instance_settings=settings[config.promoted_instance_settings],
        )
        cdk.CfnOutput(self, "EndpointName", value=self.endpoint.endpoint_name)
        cdk.CfnOutput(self, "ProductionVariantName", value=self.endpoint.production_variant_name)
        cdk.CfnOutput(self, "Phase", value=phase.value)
        if self.endpoint.capture_destination:
            cdk.CfnOutput(self, "CaptureDestination", value=self.endpoint.capture_destination)
        if phase is not TestPhase.SHADOW:
            return  # no shadow to watch or promote
        shadow_variant_name = self.endpoint.shadow_variant_name
        assert shadow_variant_name is not None, "the SHADOW phase runs the shadow"
        # With min_agreement in the criteria, the workflow publishes the answers' agreement at each look: alarm below it.
        min_agreement = (config.promotion_criteria or {}).get("min_agreement") if self.endpoint.capture_destination \
            else None
        self.alarms = ShadowAlarms(self, "Alarms", endpoint=self.endpoint,
                                   latency_ratio_threshold=config.alarm_latency_ratio,
                                   error_rate_increase_threshold=config.alarm_error_rate_increase,
                                   min_agreement=min_agreement)
        if config.rollback_on_alarms:
            for alarm in self.alarms.rollback_alarms:
                self.endpoint.add_rollback_alarm(alarm)
        self.dashboard = ShadowDashboard(self, "Dashboard", endpoint=self.endpoint)
        self.analytics = None
        if self.endpoint.capture_destination:
            # Compare the two variants' answers in Athena (shadow-report does the same locally).
            self.analytics = CaptureAnalytics(self, "CaptureAnalytics", endpoint=self.endpoint)
            cdk.CfnOutput(self, "AnalyticsWorkGroup", value=self.analytics.workgroup_name)
            cdk.CfnOutput(self, "AnalyticsTable", value=f"{self.analytics.database_name}.{self.analytics.table_name}")
        judge_agreement = (config.promotion_criteria or {}).get("min_agreement") is not None
        self.workflow = PromotionWorkflow(
            self, "Promotion", endpoint=self.endpoint, test_end=test_end, ends_itself=config.ends_itself,
            duration=None if test_end else cdk.Duration.hours(config.test_duration_hours),
            window=cdk.Duration.minutes(config.promotion_window_minutes),
            look_interval=cdk.Duration.minutes(config.look_interval_minutes)
            if config.ends_itself and not test_end else None,
            criteria=config.promotion_criteria,
            on_inconclusive=inconclusive[config.promotion_on_inconclusive], require_approval=config.require_approval,
            poll_interval=cdk.Duration.seconds(config.promotion_poll_seconds),
            # With min_agreement in the criteria, each run also judges the label agreement on the captured data.
            capture_analytics=self.analytics if judge_agreement else None)
        cdk.CfnOutput(self, "ShadowVariantName", value=shadow_variant_name)
        cdk.CfnOutput(self, "DashboardName", value=self.dashboard.dashboard_name)
        cdk.CfnOutput(self, "PromotionStateMachine", value=self.workflow.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "RegressionAlarm", value=self.alarms.composite.alarm_name)


def _routing(config: ShadowTestConfig) -> TrafficRouting:
    wait = cdk.Duration.minutes(config.traffic_routing_wait_minutes)
    size = CapacitySize.percent(config.traffic_routing_percent)
    if config.traffic_routing == "canary":
        return TrafficRouting.canary(size, wait)
    if config.traffic_routing == "linear":
        return TrafficRouting.linear(size, wait)
    if config.traffic_routing == "all_at_once":
        return TrafficRouting.all_at_once(wait)
    raise ConfigError("ShadowTestConfig", [
        f"traffic_routing must be one of all_at_once, canary, linear, got {config.traffic_routing!r}"])
