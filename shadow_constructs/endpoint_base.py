"""What every construct may rely on of an endpoint (``IShadowEndpoint``), the verbs shared by created and imported
endpoints (``ShadowEndpointBase``), and the import of an existing endpoint.

``IShadowEndpoint`` is a ``typing.Protocol``, as CDK's own ``I*`` interfaces are in Python: the consuming
constructs (dashboard, alarms, workflow, managed test, analytics, metric factory) take any object with its
members, and type checkers verify them structurally. It is ``runtime_checkable``, so those constructs reject
anything else at synth with a ConfigError. ``ShadowEndpointBase`` is the base class to subclass: it implements
the verbs (metrics, grants) from the members. Members that only a created endpoint knows (its variants, phase,
promoted settings) are None or empty on an imported one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, Node

from .capture import _PREFIX, CaptureLocation, CaptureStore, check_capture_location
from .deployment import DeploymentGuardrails
from .errors import ConfigError, Problems, shown
from .metrics import ENDPOINT_METRICS, endpoint_metric
from .phase import InstanceSettings, TestPhase
from .variant import (
    ENDPOINT_NAME_PATTERN,
    IMPORTED_PRODUCTION_NAME,
    Variant,
    check_variant_name,
)


@runtime_checkable
class IShadowEndpoint(Protocol):
    """An endpoint as the other constructs see it, created (``ShadowEndpoint``) or imported
    (``ShadowEndpoint.from_endpoint_name`` / ``from_endpoint_attributes``).

    Its data members are read-only properties, so plain attributes (as the endpoints set them) and properties
    (as ``node`` is) both satisfy them."""

    @property
    def node(self) -> Node: ...

    @property
    def endpoint_name(self) -> str:
        """Physical endpoint name (a token when CloudFormation generates it)."""
        ...

    @property
    def endpoint_arn(self) -> str: ...

    @property
    def production_variant_name(self) -> str:
        """The first production variant's name."""
        ...

    @property
    def production_variant_names(self) -> list[str]:
        """Every production variant's name, the first one first."""
        ...

    @property
    def shadow_variant_name(self) -> str | None:
        """The shadow variant's name (None without one)."""
        ...

    @property
    def sampling_percent(self) -> int | None:
        """Share of production requests copied to the shadow, 1-100 (None without a shadow, or not known)."""
        ...

    @property
    def capture_location(self) -> CaptureLocation | None:
        """Where the endpoint's data capture lands (None: no capture, or not known for an imported endpoint)."""
        ...

    @property
    def variants(self) -> Mapping[str, Variant]:
        """The variants this app declares, by name (empty for an imported endpoint)."""
        ...

    @property
    def phase(self) -> TestPhase | None:
        """The ``TestPhase`` this app renders (None for an imported endpoint)."""
        ...

    @property
    def promoted_instance_settings(self) -> InstanceSettings | None:
        """The promoted variant's instance settings (None for an imported endpoint: the workflow decides)."""
        ...

    @property
    def promoted_instance_override(self) -> Mapping[str, Any] | None:
        """ProductionVariant members of the promoted variant instead (None: none)."""
        ...

    @property
    def deployment(self) -> DeploymentGuardrails | None:
        """The guardrails updates of the endpoint use (None: SageMaker's default)."""
        ...

    @property
    def encryption_key(self) -> kms.IKey | None:
        """The KMS key of the instance storage (the config's KmsKeyId); None when SageMaker's own or not known. Whoever
        calls UpdateEndpoint needs kms:CreateGrant on it."""
        ...

    @property
    def variant_names(self) -> list[str]: ...

    def deployment_config_request(self) -> dict[str, Any] | None: ...

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant: ...

    def metric(self, metric_name: str, *, variant: str | None = None, **options: Any) -> cloudwatch.Metric: ...


def check_endpoint(problems: Problems, endpoint: Any, *, shadow: bool = False, name: str = "endpoint") -> bool:
    """Whether ``endpoint`` is an ``IShadowEndpoint`` (with a shadow variant, when ``shadow``); a problem if not."""
    if not isinstance(endpoint, IShadowEndpoint):
        problems.add(f"{name} must be an IShadowEndpoint (a ShadowEndpoint, created or imported), got {shown(endpoint)}")
        return False
    if shadow and not endpoint.shadow_variant_name:
        problems.add(no_shadow_problem(endpoint, name))
        return False
    return True


def no_shadow_problem(endpoint: IShadowEndpoint, name: str = "endpoint") -> str:
    """Why ``endpoint`` has no shadow to compare, and what to change, for the construct that needs one."""
    path = endpoint.node.path
    if endpoint.phase in (TestPhase.PROMOTED, TestPhase.ROLLED_BACK):
        return (f"{name} {path!r} renders its {endpoint.phase.name} phase, which runs no shadow: create this only "
                "while the endpoint's phase is TestPhase.SHADOW, or use ShadowTest, which wires alarms, dashboard "
                "and workflow for every phase (a production-only dashboard outside SHADOW)")
    if endpoint.phase is TestPhase.SHADOW:  # declared here in SHADOW, without a candidate
        return f"{name} {path!r} has no shadow variant: give it shadow=Variant(model=...)"
    return (f"{name} {path!r} has no shadow variant: import it with ShadowEndpoint.from_endpoint_attributes(..., "
            "shadow_variant_name=...)")


class ShadowEndpointBase(Construct):
    """Verbs shared by created and imported endpoints, built on the ``IShadowEndpoint`` members (a subclass sets
    every data member of the interface, declared here)."""

    endpoint_name: str
    endpoint_arn: str
    production_variant_name: str
    production_variant_names: list[str]
    shadow_variant_name: str | None
    sampling_percent: int | None
    capture_location: CaptureLocation | None
    phase: TestPhase | None
    promoted_instance_settings: InstanceSettings | None
    promoted_instance_override: Mapping[str, Any] | None
    deployment: DeploymentGuardrails | None
    #: The instance storage's KMS key. Default: None (not known; a subclass may say).
    encryption_key: kms.IKey | None = None

    @property
    def variant_names(self) -> list[str]:
        """Every variant name of the endpoint, production first, shadow last."""
        return self.production_variant_names + ([self.shadow_variant_name] if self.shadow_variant_name else [])

    @property
    def variants(self) -> Mapping[str, Variant]:
        """The variants this app declares, by name. Default: none (an imported endpoint)."""
        return {}

    @property
    def capture_destination(self) -> str | None:
        """``s3://<bucket>/<prefix>`` of the data capture, or None."""
        return self.capture_location.destination if self.capture_location else None

    def deployment_config_request(self) -> dict[str, Any] | None:
        """The endpoint's guardrails as UpdateEndpoint's DeploymentConfig (API member names), or None."""
        return self.deployment.render() if self.deployment else None

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call InvokeEndpoint (and its streaming form) on this endpoint only."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
            resource_arns=[self.endpoint_arn])

    def metric(self, metric_name: str, *, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
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

    def metric_invocations(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """Requests sent to the variant. Default: Sum per minute."""
        return self.metric("Invocations", variant=variant, **options)

    def metric_invocations_per_instance(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """Requests per instance of the variant. Default: Sum per minute."""
        return self.metric("InvocationsPerInstance", variant=variant, **options)

    def metric_model_latency(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """Time the model took to answer, in microseconds. Default: Average per minute."""
        return self.metric("ModelLatency", variant=variant, **options)

    def metric_overhead_latency(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """Time SageMaker added around the model, in microseconds. Default: Average per minute."""
        return self.metric("OverheadLatency", variant=variant, **options)

    def metric_invocation_4xx_errors(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """Requests answered 4xx. Default: Sum per minute."""
        return self.metric("Invocation4XXErrors", variant=variant, **options)

    def metric_invocation_5xx_errors(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """Requests answered 5xx. Default: Sum per minute."""
        return self.metric("Invocation5XXErrors", variant=variant, **options)

    def metric_invocation_model_errors(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """Requests the model answered with an error. Default: Sum per minute."""
        return self.metric("InvocationModelErrors", variant=variant, **options)

    def metric_cpu_utilization(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """CPU use in percent, 0-100 per core. Default: Average per minute."""
        return self.metric("CPUUtilization", variant=variant, **options)

    def metric_memory_utilization(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """Memory use in percent. Default: Average per minute."""
        return self.metric("MemoryUtilization", variant=variant, **options)

    def metric_disk_utilization(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """Disk use in percent. Default: Average per minute."""
        return self.metric("DiskUtilization", variant=variant, **options)

    def metric_gpu_utilization(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """GPU use in percent, 0-100 per GPU (GPU instances only). Default: Average per minute."""
        return self.metric("GPUUtilization", variant=variant, **options)

    def metric_gpu_memory_utilization(self, variant: str | None = None, **options: Any) -> cloudwatch.Metric:
        """GPU memory use in percent (GPU instances only). Default: Average per minute."""
        return self.metric("GPUMemoryUtilization", variant=variant, **options)


class ImportedShadowEndpoint(ShadowEndpointBase):
    """An existing endpoint described by what the other constructs use of it, every value checked at synth
    (``ShadowEndpoint.from_endpoint_attributes`` makes one).

    :param endpoint_name: its name. Required.
    :param production_variant_name: its production variant. Default: ``AllTraffic`` (the SageMaker Python SDK's).
    :param shadow_variant_name: its shadow variant. Default: none.
    :param sampling_percent: the share of production requests its shadow gets, 1-100 (the workflow's verdict
        reads it). Default: not known (the workflow then assumes 100).
    :param capture_store: the CaptureStore its data capture writes to. Default: none.
    :param capture_bucket: the bucket its data capture writes to, instead of a store. Default: none.
    :param capture_key: the KMS key of the captured objects, with ``capture_bucket``. Default: the bucket's own
        key if CDK knows it.
    :param capture_prefix: the capture prefix, with a store or a bucket. Default: ``datacapture``.
    :param deployment: the ``DeploymentGuardrails`` it is updated with (the promotion workflow's UpdateEndpoint
        uses them). Default: none (SageMaker's default blue/green).
    :param encryption_key: the KMS key its endpoint configs encrypt the instances' storage with (their
        ``KmsKeyId``). The promotion workflow's UpdateEndpoint then may create SageMaker's grant on it, which SageMaker
        asks for as the caller: without it, AWS refuses the promotion. Default: none (configs without a KmsKeyId).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        production_variant_name: str = IMPORTED_PRODUCTION_NAME,
        shadow_variant_name: str | None = None,
        sampling_percent: int | None = None,
        capture_store: CaptureStore | None = None,
        capture_bucket: s3.IBucket | None = None,
        capture_key: kms.IKey | None = None,
        capture_prefix: str | None = None,
        deployment: DeploymentGuardrails | None = None,
        encryption_key: kms.IKey | None = None,
        where: str = "ShadowEndpoint.from_endpoint_attributes",
    ) -> None:
        super().__init__(scope, construct_id)
        problems = Problems(f"{where} {self.node.path!r}")
        if problems.check_type("endpoint_name", endpoint_name, str, "a string"):
            problems.check_pattern("endpoint_name", endpoint_name, ENDPOINT_NAME_PATTERN,
                                   "must be 1-63 letters, digits and inner hyphens")
        _check_variant_names(problems, production_variant_name, shadow_variant_name)
        if sampling_percent is not None and shadow_variant_name is None:
            problems.add(f"sampling_percent goes with shadow_variant_name, got {shown(sampling_percent)} without one")
        elif sampling_percent is not None:
            problems.check_int_range("sampling_percent", sampling_percent, 1, 100)
        location = _capture_location(problems, capture_store, capture_bucket, capture_key, capture_prefix)
        if deployment is not None and not isinstance(deployment, DeploymentGuardrails):
            problems.add(f"deployment must be a DeploymentGuardrails, got {shown(deployment)}")
        if encryption_key is not None and not hasattr(encryption_key, "key_arn"):
            problems.add(f"encryption_key must be an aws_kms.IKey, got {shown(encryption_key)}")
        problems.raise_if_any()
        self.endpoint_name = endpoint_name
        self.endpoint_arn = endpoint_arn(self, endpoint_name)
        self.production_variant_name = production_variant_name
        self.production_variant_names = [production_variant_name]
        self.shadow_variant_name = shadow_variant_name
        self.sampling_percent = sampling_percent
        self.capture_location = location
        self.deployment = deployment
        self.phase = None
        self.encryption_key = encryption_key
        self.promoted_instance_settings = None
        self.promoted_instance_override = None


def endpoint_arn(scope: Construct, endpoint_name: str) -> str:
    """The ARN of endpoint ``endpoint_name`` in the stack of ``scope`` (SageMaker lower-cases names in ARNs)."""
    arn_name = endpoint_name if cdk.Token.is_unresolved(endpoint_name) else endpoint_name.lower()
    return cdk.Stack.of(scope).format_arn(service="sagemaker", resource="endpoint", resource_name=arn_name)


def _check_variant_names(problems: Problems, production: Any, shadow: Any) -> None:
    if problems.check_type("production_variant_name", production, str, "a string"):
        check_variant_name(problems, "production_variant_name", production)
    if shadow is not None and problems.check_type("shadow_variant_name", shadow, str, "a string"):
        check_variant_name(problems, "shadow_variant_name", shadow)
        if shadow == production:
            problems.add(f"shadow_variant_name must differ from production_variant_name, got {shadow!r} for both")


def _capture_location(problems: Problems, store: Any, bucket: Any, key: Any, prefix: Any) -> CaptureLocation | None:
    """Where an imported endpoint's capture lands: a CaptureStore or a bucket (and its key), under ``prefix``."""
    found = len(problems.found)
    check_capture_location(problems, store, bucket, key, names=("capture_store", "capture_bucket", "capture_key"))
    if prefix is not None and store is None and bucket is None:
        problems.add(f"capture_prefix goes with capture_store or capture_bucket, got {shown(prefix)} without either")
    elif prefix is not None and problems.check_type("capture_prefix", prefix, str, "a string") \
            and not _PREFIX.fullmatch(prefix):
        problems.add(f"capture_prefix must be S3 key segments without leading or trailing '/', got {prefix!r}")
    if len(problems.found) > found or (store is None and bucket is None):
        return None
    return CaptureLocation.of(store, bucket, key, prefix)


__all__ = ["ConfigError", "IShadowEndpoint", "ImportedShadowEndpoint", "ShadowEndpointBase", "check_endpoint"]
