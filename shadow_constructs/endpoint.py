"""ShadowEndpoint: a SageMaker real-time endpoint with a production and an optional shadow variant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import aws_cdk as cdk
import jsii
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ._runtime import runtime_module
from .capture import CaptureStore, DataCapture
from .deployment import DeploymentGuardrails
from .errors import ConfigError, Problems, shown
from .metrics import ENDPOINT_METRICS, endpoint_metric
from .phase import METADATA_KEY, OVERRIDE_FIELDS, InstanceSettings, TestPhase
from .variant import VARIANT_NAME_PATTERN, Variant, check_variant_name, has_local_storage, instance_family

DEFAULT_PRODUCTION_NAME = "production"
DEFAULT_SHADOW_NAME = "shadow"
# Families SageMaker refuses in shadow tests (SPEC: Inf1 instances).
SHADOW_EXCLUDED_FAMILIES = ("inf1",)


@runtime_checkable
class IShadowEndpoint(Protocol):
    """What other constructs may rely on, for a created or an imported endpoint."""

    endpoint_name: str
    endpoint_arn: str
    production_variant_name: str
    shadow_variant_name: str | None

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant: ...

    def metric(self, metric_name: str, *, variant: str | None = None, **options) -> cloudwatch.Metric: ...


class ShadowEndpointBase(Construct):
    """Verbs shared by created and imported endpoints."""

    endpoint_name: str
    endpoint_arn: str
    production_variant_name: str
    shadow_variant_name: str | None

    @property
    def variant_names(self) -> list[str]:
        """Every variant name of the endpoint, production first, shadow last."""
        names = list(getattr(self, "_production_names", [self.production_variant_name]))
        return names + ([self.shadow_variant_name] if self.shadow_variant_name else [])

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call InvokeEndpoint (and its streaming form) on this endpoint only."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
            resource_arns=[self.endpoint_arn])

    def metric(self, metric_name: str, *, variant: str | None = None, **options) -> cloudwatch.Metric:
        """A 1-minute CloudWatch metric of one variant (default: the production variant).

        ``metric_name`` is one of the SageMaker endpoint metrics (Invocations, ModelLatency,
        CPUUtilization, ...); ``options`` are ``aws_cloudwatch.MetricOptions`` keywords
        (statistic, period, label, color, unit, ...). Default statistic: Sum for counts,
        Average for latencies and utilizations.
        """
        problems = Problems(f"{type(self).__name__}.metric")
        if metric_name not in ENDPOINT_METRICS:
            problems.add(f"metric_name must be one of {', '.join(ENDPOINT_METRICS)}, got {shown(metric_name)}")
        variant = self.production_variant_name if variant is None else variant
        if variant not in self.variant_names and not cdk.Token.is_unresolved(variant):  # a name seldom is a token
            problems.add(f"variant must be one of {', '.join(self.variant_names)}, got {shown(variant)}")
        problems.raise_if_any()
        return endpoint_metric(self.endpoint_name, variant, metric_name, **options)

    def metric_invocations(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """Requests sent to the variant. Default: Sum per minute."""
        return self.metric("Invocations", variant=variant, **options)

    def metric_invocations_per_instance(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """Requests per instance of the variant. Default: Sum per minute."""
        return self.metric("InvocationsPerInstance", variant=variant, **options)

    def metric_model_latency(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """Time the model took to answer, in microseconds. Default: Average per minute."""
        return self.metric("ModelLatency", variant=variant, **options)

    def metric_overhead_latency(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """Time SageMaker added around the model, in microseconds. Default: Average per minute."""
        return self.metric("OverheadLatency", variant=variant, **options)

    def metric_invocation_4xx_errors(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """Requests answered 4xx. Default: Sum per minute."""
        return self.metric("Invocation4XXErrors", variant=variant, **options)

    def metric_invocation_5xx_errors(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """Requests answered 5xx. Default: Sum per minute."""
        return self.metric("Invocation5XXErrors", variant=variant, **options)

    def metric_invocation_model_errors(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """Requests the model answered with an error. Default: Sum per minute."""
        return self.metric("InvocationModelErrors", variant=variant, **options)

    def metric_cpu_utilization(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """CPU use in percent, 0-100 per core. Default: Average per minute."""
        return self.metric("CPUUtilization", variant=variant, **options)

    def metric_memory_utilization(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """Memory use in percent. Default: Average per minute."""
        return self.metric("MemoryUtilization", variant=variant, **options)

    def metric_disk_utilization(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """Disk use in percent. Default: Average per minute."""
        return self.metric("DiskUtilization", variant=variant, **options)

    def metric_gpu_utilization(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """GPU use in percent, 0-100 per GPU (GPU instances only). Default: Average per minute."""
        return self.metric("GPUUtilization", variant=variant, **options)

    def metric_gpu_memory_utilization(self, variant: str | None = None, **options) -> cloudwatch.Metric:
        """GPU memory use in percent (GPU instances only). Default: Average per minute."""
        return self.metric("GPUMemoryUtilization", variant=variant, **options)


class _ImportedEndpoint(ShadowEndpointBase):
    def __init__(self, scope: Construct, construct_id: str, endpoint_name: str,
                 production_variant_name: str, shadow_variant_name: str | None) -> None:
        super().__init__(scope, construct_id)
        problems = Problems(f"ShadowEndpoint.from_endpoint_name {self.node.path!r}")
        if problems.check_type("endpoint_name", endpoint_name, str, "a string"):
            problems.check_pattern("endpoint_name", endpoint_name, VARIANT_NAME_PATTERN,
                                   "must be 1-63 letters, digits and inner hyphens")
        if problems.check_type("production_variant_name", production_variant_name, str, "a string"):
            check_variant_name(problems, "production_variant_name", production_variant_name)
        if shadow_variant_name is not None and problems.check_type(
                "shadow_variant_name", shadow_variant_name, str, "a string"):
            check_variant_name(problems, "shadow_variant_name", shadow_variant_name)
            if shadow_variant_name == production_variant_name:
                problems.add(f"shadow_variant_name must differ from production_variant_name, "
                             f"got {shadow_variant_name!r} for both")
        problems.raise_if_any()
        self.endpoint_name = endpoint_name
        # SageMaker lower-cases names in ARNs.
        arn_name = endpoint_name if cdk.Token.is_unresolved(endpoint_name) else endpoint_name.lower()
        self.endpoint_arn = cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=arn_name)
        self.production_variant_name = production_variant_name
        self.shadow_variant_name = shadow_variant_name


@jsii.implements(cdk.IStableAnyProducer)
class _RollbackAlarms:
    def __init__(self, alarms: list[cloudwatch.IAlarm]) -> None:
        self.alarms = alarms

    def produce(self):
        if not self.alarms:
            return None
        # The L1 validates and renders this value like a struct it was given: camelCase keys.
        return {"alarms": [{"alarmName": _alarm_name(alarm)} for alarm in self.alarms]}


def _alarm_name(alarm: cloudwatch.IAlarm) -> str:
    """An alarm's physical name as a literal when it has one, so that referring to it adds no
    dependency (alarms on an endpoint's metrics may also guard that endpoint's updates)."""
    cfn = alarm.node.default_child if hasattr(alarm, "node") else None
    name = cfn.alarm_name if isinstance(cfn, cloudwatch.CfnAlarm) else None
    return name if isinstance(name, str) and not cdk.Token.is_unresolved(name) else alarm.alarm_name


class ShadowEndpoint(ShadowEndpointBase):
    """A real-time endpoint whose config has a production variant and, optionally, a shadow.

    SageMaker copies ``sampling_percent`` of the production requests to the shadow; only the
    production variant answers callers. The shadow's InitialVariantWeight is the production
    weight times ``sampling_percent`` / 100: SageMaker reads the sampling share as the ratio
    of the two weights (AWS's own examples read weight 1 and 0.5 as 50%; the API reference
    does not spell this out).

    :param production: the production ``Variant``, or 1-10 of them for an A/B endpoint
        without a shadow. Required.
    :param shadow: the shadow ``Variant``. Default: none (a plain endpoint).
    :param sampling_percent: share of production requests copied to the shadow, 1-100.
        Default: 100 when there is a shadow.
    :param data_capture: a ``DataCapture``, applied to every variant. Default: no capture.
    :param deployment: ``DeploymentGuardrails`` for updates of the endpoint (blue/green,
        auto-rollback alarms). Default: SageMaker's default blue/green, all at once.
    :param encryption_key: KMS key for the ML storage volumes of the instances.
        Default: a new customer managed key, unless an instance type has local NVMe storage
        (then SageMaker encrypts it in hardware and accepts no key).
    :param endpoint_name: physical endpoint name. Default: generated by CloudFormation.
        The endpoint config's name is always generated: every change to it replaces it.
    :param phase: the ``TestPhase`` to render. ``SHADOW``: production plus the shadow. ``PROMOTED``:
        the shadow's model in the production variant (its name kept) with ``promoted_instance_settings``
        or ``promoted_instance_override``, the same capture and keys, no shadow: exactly the config the
        promotion workflow builds from the live SHADOW config (it is rendered by the workflow's own
        function). ``ROLLED_BACK``: production alone. PROMOTED and ROLLED_BACK still take ``shadow``
        (the candidate). Default: SHADOW.
    :param promoted_instance_settings: ``InstanceSettings`` of the promoted variant (production's or the
        shadow's type and count); the PromotionWorkflow on this endpoint uses it too. Default: PRODUCTION.
    :param promoted_instance_override: explicit ProductionVariant members for the promoted variant
        instead (some of InstanceType, InitialInstanceCount, VolumeSizeInGB, RoutingConfig).
        Default: none.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        production: Variant | Sequence[Variant],
        shadow: Variant | None = None,
        sampling_percent: int | None = None,
        data_capture: DataCapture | None = None,
        deployment: DeploymentGuardrails | None = None,
        encryption_key: kms.IKey | None = None,
        endpoint_name: str | None = None,
        phase: TestPhase = TestPhase.SHADOW,
        promoted_instance_settings: InstanceSettings = InstanceSettings.PRODUCTION,
        promoted_instance_override: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        problems = Problems(f"ShadowEndpoint {self.node.path!r}")
        productions = self._check_variants(problems, production, shadow)
        self._check_phase(problems, phase, shadow, promoted_instance_settings, promoted_instance_override)
        if sampling_percent is not None and shadow is None:
            problems.add(f"sampling_percent applies only with a shadow variant, got {shown(sampling_percent)} "
                         "without shadow")
        elif sampling_percent is not None:
            problems.check_int_range("sampling_percent", sampling_percent, 1, 100)
        if data_capture is not None and not isinstance(data_capture, DataCapture):
            problems.add(f"data_capture must be a DataCapture, got {shown(data_capture)}")
        if deployment is not None and not isinstance(deployment, DeploymentGuardrails):
            problems.add(f"deployment must be a DeploymentGuardrails, got {shown(deployment)}")
        elif deployment is not None and productions:
            self._check_fleet_sizes(problems, deployment, productions[0].instance_count)
        every = productions + ([shadow] if isinstance(shadow, Variant) else [])
        local = [v.instance_type for v in every if not cdk.Token.is_unresolved(v.instance_type)
                 and has_local_storage(v.instance_type)]
        if encryption_key is not None and not hasattr(encryption_key, "key_arn"):
            problems.add(f"encryption_key must be an aws_kms.IKey, got {shown(encryption_key)}")
        elif encryption_key is not None and local:
            problems.add(f"encryption_key cannot be used with instance types that have local NVMe storage "
                         f"(SageMaker encrypts it in hardware), got {', '.join(sorted(set(local)))}")
        if endpoint_name is not None and problems.check_type("endpoint_name", endpoint_name, str, "a string"):
            problems.check_pattern("endpoint_name", endpoint_name, VARIANT_NAME_PATTERN,
                                   "must be 1-63 letters, digits and inner hyphens")
        problems.raise_if_any()

        self.phase = phase
        self.promoted_instance_settings = promoted_instance_settings
        self.promoted_instance_override = dict(promoted_instance_override) if promoted_instance_override else None
        self.production = productions[0]
        self.production_variants = productions
        #: The candidate (declared in every phase; it runs as a shadow in SHADOW only).
        self.candidate = shadow
        shadowing = shadow is not None and phase is TestPhase.SHADOW
        #: The shadow variant this endpoint runs (None outside the SHADOW phase).
        self.shadow = shadow if shadowing else None
        #: Share of production requests copied to the shadow (None without one).
        self.sampling_percent = (sampling_percent or 100) if shadow else None
        self.data_capture = data_capture
        self.deployment = deployment
        self._production_names = [self._name_of(v, i) for i, v in enumerate(productions)]
        self.production_variant_name = self._production_names[0]
        candidate_name = (shadow.variant_name or DEFAULT_SHADOW_NAME) if shadow else None
        self.shadow_variant_name = candidate_name if shadowing else None
        if shadowing:
            self._warn_about_shadow_capacity()

        self.encryption_key: kms.IKey | None = encryption_key
        if encryption_key is None and not local:
            self.encryption_key = kms.Key(
                self, "StorageKey", enable_key_rotation=True, removal_policy=cdk.RemovalPolicy.DESTROY,
                description=f"ML storage volumes of the SageMaker endpoint {self.node.path}")

        self.capture_store: CaptureStore | None = None
        self.capture_destination: str | None = None
        capture_config = self._capture_config(data_capture, every) if data_capture else None

        weights = [v.weight or 1.0 for v in productions]
        production_requests = [_variant_request(v, n, w) for v, n, w
                               in zip(productions, self._production_names, weights, strict=True)]
        shadow_requests = [_variant_request(shadow, candidate_name, weights[0] * self.sampling_percent / 100)] \
            if shadow else []
        #: The variants as CreateEndpointConfig takes them (API member names), for this phase.
        self.config_variants = self._phase_variants(production_requests, shadow_requests)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "Config",
            production_variants=[_variant_property(v) for v in self.config_variants["ProductionVariants"]],
            shadow_production_variants=[_variant_property(v) for v in self.config_variants["ShadowProductionVariants"]]
            or None,
            data_capture_config=capture_config,
            kms_key_id=self.encryption_key.key_arn if self.encryption_key else None,
        )
        self._rollback_alarms: list[cloudwatch.IAlarm] = []
        self.resource = sagemaker.CfnEndpoint(
            self, "Resource",
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            endpoint_name=endpoint_name,
            deployment_config=self._deployment_config(deployment) if deployment else None,
        )
        # A fixed name is used as is, so metrics and alarms on it need not wait for the endpoint.
        self._fixed_name = endpoint_name is not None and not cdk.Token.is_unresolved(endpoint_name)
        self.resource.add_metadata(METADATA_KEY, {
            "role": "endpoint", "phase": phase.value, "production_variant": self.production_variant_name,
            "shadow_variant": self.shadow_variant_name})
        self.endpoint_name = endpoint_name if self._fixed_name else self.resource.attr_endpoint_name
        self.endpoint_arn = self.resource.ref  # Ref of AWS::SageMaker::Endpoint is its ARN
        for alarm in deployment.rollback_alarms if deployment else ():
            self.add_rollback_alarm(alarm)
        self.scalable_targets: dict[str, appscaling.CfnScalableTarget] = {}
        # Outside SHADOW the production variant keeps production's scaling (as the workflow restores it).
        scaled = productions + ([shadow] if self.shadow is not None else [])
        for variant, name in zip(scaled, self._production_names + [self.shadow_variant_name], strict=False):
            if variant.autoscaling:
                self._autoscale(variant, name)

    @staticmethod
    def from_endpoint_name(
        scope: Construct,
        construct_id: str,
        endpoint_name: str,
        *,
        production_variant_name: str = "AllTraffic",
        shadow_variant_name: str | None = None,
    ) -> ShadowEndpointBase:
        """An existing endpoint, for dashboards, alarms, grants and managed shadow tests.

        :param production_variant_name: its production variant. Default: ``AllTraffic``
            (the SageMaker Python SDK's default name).
        :param shadow_variant_name: its shadow variant, if it has one. Default: none.
        """
        return _ImportedEndpoint(scope, construct_id, endpoint_name, production_variant_name,
                                 shadow_variant_name)

    @property
    def variants(self) -> dict[str, Variant]:
        """Each variant this phase runs, by name, production first (in PROMOTED, the production
        variant's entry is the candidate: its model serves there)."""
        serving = [self.candidate] if self.phase is TestPhase.PROMOTED and self.candidate else self.production_variants
        pairs = list(zip(self._production_names, serving, strict=False))
        if self.shadow:
            pairs.append((self.shadow_variant_name, self.shadow))
        return dict(pairs)

    def _phase_variants(self, production: list[dict[str, Any]], shadow: list[dict[str, Any]]) -> dict[str, list]:
        if self.phase is TestPhase.SHADOW:
            return {"ProductionVariants": production, "ShadowProductionVariants": shadow}
        if self.phase is TestPhase.ROLLED_BACK:
            return {"ProductionVariants": production, "ShadowProductionVariants": []}
        promotion = runtime_module("promotion")
        settings = "override" if self.promoted_instance_override else self.promoted_instance_settings.value
        built = promotion.promoted_config({"ProductionVariants": production, "ShadowProductionVariants": shadow},
                                          "rendered", settings, self.promoted_instance_override)
        return {"ProductionVariants": built["ProductionVariants"], "ShadowProductionVariants": []}

    @staticmethod
    def _check_phase(problems: Problems, phase: Any, shadow: Any, settings: Any, override: Any) -> None:
        if not isinstance(phase, TestPhase):
            problems.add(f"phase must be a TestPhase (SHADOW, PROMOTED or ROLLED_BACK), got {shown(phase)}")
        elif phase is TestPhase.PROMOTED and shadow is None:
            problems.add("phase PROMOTED puts the shadow's model into production, so shadow must be given, got none")
        if not isinstance(settings, InstanceSettings):
            problems.add(f"promoted_instance_settings must be an InstanceSettings, got {shown(settings)}")
        if override is None:
            return
        if not isinstance(override, Mapping) or not override or set(override) - set(OVERRIDE_FIELDS):
            problems.add(f"promoted_instance_override must set some of {', '.join(OVERRIDE_FIELDS)}, got "
                         f"{sorted(override) if isinstance(override, Mapping) else shown(override)}")
            return
        if "InstanceType" in override:
            problems.check_pattern("promoted_instance_override InstanceType", override["InstanceType"],
                                   r"ml\.[a-z][a-z0-9-]*\.[a-z0-9]+", "must be a SageMaker instance type")
        if "InitialInstanceCount" in override:
            problems.check_int_range("promoted_instance_override InitialInstanceCount", override["InitialInstanceCount"], 1)

    def add_rollback_alarm(self, alarm: cloudwatch.IAlarm) -> None:
        """Roll back an update of this endpoint while ``alarm`` is in ALARM (at most 10 alarms).

        Needs ``deployment`` guardrails. Each variant's execution role may describe the alarm.
        """
        problems = Problems(f"ShadowEndpoint {self.node.path!r}")
        if self.deployment is None:
            problems.add("add_rollback_alarm needs deployment guardrails: pass deployment=DeploymentGuardrails(...)")
        elif not hasattr(alarm, "alarm_name"):
            problems.add(f"alarm must be a CloudWatch alarm, got {shown(alarm)}")
        elif len(self._rollback_alarms) >= 10:
            problems.add(f"rollback alarms take at most 10 alarms; adding {alarm.node.path!r} would make 11")
        problems.raise_if_any()
        self._rollback_alarms.append(alarm)
        name = _alarm_name(alarm)
        arn = alarm.alarm_arn if cdk.Token.is_unresolved(name) else cdk.Stack.of(self).format_arn(
            service="cloudwatch", resource="alarm", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        for variant in self.variants.values():
            iam.Grant.add_to_principal(grantee=variant.model, actions=["cloudwatch:DescribeAlarms"],
                                       resource_arns=[arn])
        if self._fixed_name and hasattr(alarm, "node") and cdk.Stack.of(alarm) is cdk.Stack.of(self):
            # With a fixed endpoint name, alarms on its metrics do not depend on it: create them first.
            self.resource.node.add_dependency(alarm)

    def deployment_config_request(self) -> dict | None:
        """The endpoint's guardrails as UpdateEndpoint's DeploymentConfig (API member names), or None."""
        if self.deployment is None:
            return None
        routing = self.deployment.traffic_routing
        traffic: dict = {"Type": routing.kind, "WaitIntervalInSeconds": _seconds(routing.wait)}
        if routing.size is not None:
            traffic["CanarySize" if routing.kind == "CANARY" else "LinearStepSize"] = {
                "Type": routing.size.kind, "Value": routing.size.value}
        policy: dict = {"TrafficRoutingConfiguration": traffic,
                        "TerminationWaitInSeconds": _seconds(self.deployment.termination_wait)}
        if self.deployment.maximum_execution_timeout is not None:
            policy["MaximumExecutionTimeoutInSeconds"] = _seconds(self.deployment.maximum_execution_timeout)
        request: dict = {"BlueGreenUpdatePolicy": policy}
        if self._rollback_alarms:
            request["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": _alarm_name(a)}
                                                               for a in self._rollback_alarms]}
        return request

    # Validation helpers

    @staticmethod
    def _check_variants(problems: Problems, production, shadow) -> list[Variant]:
        productions = [production] if isinstance(production, Variant) else production
        if isinstance(productions, (str, bytes)) or not isinstance(productions, Sequence):
            problems.add(f"production must be a Variant or a list of Variants, got {shown(production)}")
            return []
        productions = list(productions)
        bad = [shown(v) for v in productions if not isinstance(v, Variant)]
        if bad:
            problems.add(f"production must hold Variants only, got {', '.join(bad)}")
            return []
        if not productions:
            problems.add("production must hold at least one Variant, got an empty list")
        if shadow is not None:
            if not isinstance(shadow, Variant):
                problems.add(f"shadow must be a Variant, got {shown(shadow)}")
                return productions
            if len(productions) > 1:
                problems.add(f"production must be exactly one Variant when there is a shadow, got {len(productions)}")
            if any(shadow is p for p in productions):
                problems.add("shadow must be a different Variant from production, got the same object for both")
            if shadow.weight is not None:
                problems.add(f"shadow weight comes from sampling_percent; leave Variant(weight=...) unset "
                             f"on the shadow, got {shadow.weight}")
            for role, variant in [("production", p) for p in productions] + [("shadow", shadow)]:
                family = None if cdk.Token.is_unresolved(variant.instance_type) else \
                    instance_family(variant.instance_type)
                if family in SHADOW_EXCLUDED_FAMILIES:
                    problems.add(f"{role} instance_type {variant.instance_type!r} is not allowed in a shadow test "
                                 f"(SageMaker rejects {', '.join(f'ml.{f}' for f in SHADOW_EXCLUDED_FAMILIES)} "
                                 "instances for shadow variants)")
        elif len(productions) > 10:
            problems.add(f"production takes at most 10 Variants, got {len(productions)}")
        names = [v.variant_name or (DEFAULT_PRODUCTION_NAME if i == 0 else f"{DEFAULT_PRODUCTION_NAME}-{i + 1}")
                 for i, v in enumerate(productions)]
        if isinstance(shadow, Variant):
            names.append(shadow.variant_name or DEFAULT_SHADOW_NAME)
        duplicates = sorted({n for n in names if names.count(n) > 1 and not cdk.Token.is_unresolved(n)})
        if duplicates:
            problems.add(f"variant_name must be unique within the endpoint, got {', '.join(map(repr, duplicates))} "
                         "more than once")
        return productions

    @staticmethod
    def _check_fleet_sizes(problems: Problems, deployment: DeploymentGuardrails, fleet: int) -> None:
        size = deployment.traffic_routing.size
        if size is None or size.kind != "INSTANCE_COUNT":
            return
        share = size.share_of(fleet)
        if deployment.traffic_routing.kind == "CANARY" and share > 0.5:
            problems.add(f"canary size must be at most 50% of the production fleet ({fleet} instances), "
                         f"got {size.value} instance(s)")
        if deployment.traffic_routing.kind == "LINEAR" and not 0.1 <= share <= 0.5:
            problems.add(f"linear step must be 10-50% of the production fleet ({fleet} instances), "
                         f"got {size.value} instance(s)")

    @staticmethod
    def _name_of(variant: Variant, index: int) -> str:
        if variant.variant_name:
            return variant.variant_name
        return DEFAULT_PRODUCTION_NAME if index == 0 else f"{DEFAULT_PRODUCTION_NAME}-{index + 1}"

    def _warn_about_shadow_capacity(self) -> None:
        shadow, production = self.shadow, self.production
        if not shadow or shadow.autoscaling or shadow.instance_type != production.instance_type:
            return
        shadow_load = self.sampling_percent / 100 / shadow.instance_count
        production_load = 1 / production.instance_count
        if shadow_load > production_load * 1.001:
            cdk.Annotations.of(self).add_warning_v2(
                "shadow-constructs:shadow-under-provisioned",
                f"each shadow instance gets {shadow_load / production_load:.2f}x the requests of a production "
                f"instance ({self.sampling_percent}% on {shadow.instance_count} vs 100% on "
                f"{production.instance_count}); the shadow's latency will read worse for lack of capacity")

    # Rendering helpers

    def _capture_config(self, capture: DataCapture, variants: list[Variant]):
        bound = capture.bind(self, [variant.model for variant in variants])
        self.capture_store = bound.created_store
        self.capture_destination = bound.destination
        key = bound.key
        modes = [m for m, on in (("Input", capture.capture_input), ("Output", capture.capture_output)) if on]
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=capture.sampling_percent,
            destination_s3_uri=self.capture_destination,
            capture_options=[sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=m) for m in modes],
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                csv_content_types=capture.csv_content_types, json_content_types=capture.json_content_types),
            kms_key_id=key.key_arn if key is not None else None,
        )

    def _deployment_config(self, deployment: DeploymentGuardrails):
        routing = deployment.traffic_routing
        size = None
        if routing.size is not None:
            size = sagemaker.CfnEndpoint.CapacitySizeProperty(type=routing.size.kind, value=routing.size.value)
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                    type=routing.kind,
                    wait_interval_in_seconds=_seconds(routing.wait),
                    canary_size=size if routing.kind == "CANARY" else None,
                    linear_step_size=size if routing.kind == "LINEAR" else None),
                termination_wait_in_seconds=_seconds(deployment.termination_wait),
                maximum_execution_timeout_in_seconds=_seconds(deployment.maximum_execution_timeout)),
            auto_rollback_configuration=cdk.Lazy.any(_RollbackAlarms(self._rollback_alarms)),
        )

    def _autoscale(self, variant: Variant, name: str) -> None:
        scaling = variant.autoscaling
        target = appscaling.CfnScalableTarget(
            self, f"ScalableTarget-{name}",
            service_namespace="sagemaker",
            resource_id=f"endpoint/{self.endpoint_name}/variant/{name}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=scaling.min_capacity, max_capacity=scaling.max_capacity)
        appscaling.CfnScalingPolicy(
            self, f"ScalingPolicy-{name}",
            policy_name=f"{name}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.ref,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.
            TargetTrackingScalingPolicyConfigurationProperty(
                target_value=scaling.target_invocations_per_instance,
                predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"),
                scale_in_cooldown=_seconds(scaling.scale_in_cooldown),
                scale_out_cooldown=_seconds(scaling.scale_out_cooldown),
                disable_scale_in=scaling.disable_scale_in))
        if self._fixed_name:
            target.add_dependency(self.resource)  # a fixed endpoint name carries no reference to wait on
        self.scalable_targets[name] = target


def _seconds(duration: cdk.Duration | None) -> int | None:
    return None if duration is None else int(duration.to_seconds())


def _variant_request(variant: Variant, name: str, weight: float) -> dict[str, Any]:
    """A variant as CreateEndpointConfig takes it (API member names; unset members left out)."""
    request: dict[str, Any] = {
        "VariantName": name, "ModelName": variant.model.model_name, "InstanceType": variant.instance_type,
        "InitialInstanceCount": variant.instance_count, "InitialVariantWeight": weight,
        "VolumeSizeInGB": variant.volume_size_in_gb,
        "ModelDataDownloadTimeoutInSeconds": _seconds(variant.model_data_download_timeout),
        "ContainerStartupHealthCheckTimeoutInSeconds": _seconds(variant.container_startup_health_check_timeout),
        "RoutingConfig": {"RoutingStrategy": variant.routing_strategy.value} if variant.routing_strategy else None,
    }
    return {key: value for key, value in request.items() if value is not None}


def _variant_property(request: Mapping[str, Any]) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
    routing = request.get("RoutingConfig")
    return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
        variant_name=request["VariantName"],
        model_name=request["ModelName"],
        instance_type=request.get("InstanceType"),
        initial_instance_count=request.get("InitialInstanceCount"),
        initial_variant_weight=request.get("InitialVariantWeight"),
        volume_size_in_gb=request.get("VolumeSizeInGB"),
        model_data_download_timeout_in_seconds=request.get("ModelDataDownloadTimeoutInSeconds"),
        container_startup_health_check_timeout_in_seconds=request.get("ContainerStartupHealthCheckTimeoutInSeconds"),
        routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
            routing_strategy=routing["RoutingStrategy"]) if routing else None,
    )


__all__ = ["ConfigError", "IShadowEndpoint", "ShadowEndpoint", "ShadowEndpointBase"]
