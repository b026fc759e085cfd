"""Variant and VariantAutoscaling: validated values describing one variant of an endpoint."""

from __future__ import annotations

import difflib
import enum
import functools
import re

import aws_cdk as cdk

from .errors import ConfigError, Problems, shown
from .model import ServingModel

VARIANT_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
#: Endpoint names follow the same rule as variant names.
ENDPOINT_NAME_PATTERN = VARIANT_NAME_PATTERN
INSTANCE_TYPE_PATTERN = r"ml\.[a-z][a-z0-9-]*\.[a-z0-9]+"
#: Variant names a ShadowEndpoint gives when Variant(variant_name=...) is unset: the first production variant,
#: the others (``production-2``, ...), and the shadow.
DEFAULT_PRODUCTION_NAME = "production"
DEFAULT_SHADOW_NAME = "shadow"
#: The production variant name of an endpoint made elsewhere, unless told (the SageMaker Python SDK's default).
IMPORTED_PRODUCTION_NAME = "AllTraffic"
#: Where captured data lands under its bucket, unless told.
DEFAULT_CAPTURE_PREFIX = "datacapture"
# Families SageMaker refuses in shadow tests (SPEC: Inf1 instances).
SHADOW_EXCLUDED_FAMILIES = ("inf1",)

# Families whose instances carry local NVMe storage: SageMaker encrypts it in hardware and
# rejects an endpoint-config KmsKeyId for them.
_LOCAL_STORAGE_FAMILY = re.compile(r"[a-z]+\d+[a-z]*d[a-z]*|g5|g6|g6e|gr6|p5|p5e|p5en|p6-b200|trn1|trn1n|trn2")


def instance_family(instance_type: str) -> str:
    """``ml.g4dn.xlarge`` → ``g4dn``."""
    return instance_type.split(".")[1]


def has_local_storage(instance_type: str) -> bool:
    """Whether SageMaker gives this instance type local NVMe storage (then no KMS key is allowed)."""
    return bool(_LOCAL_STORAGE_FAMILY.fullmatch(instance_family(instance_type)))


def default_production_name(index: int) -> str:
    """The name of the ``index``-th production variant (from 0) when it has none of its own."""
    return DEFAULT_PRODUCTION_NAME if index == 0 else f"{DEFAULT_PRODUCTION_NAME}-{index + 1}"


def check_shadow_instance_type(problems: Problems, name: str, instance_type: str) -> None:
    """The one rule on instance types in a shadow test: SageMaker rejects some families (ml.inf1) for them."""
    if cdk.Token.is_unresolved(instance_type) or "." not in instance_type:
        return
    if instance_family(instance_type) in SHADOW_EXCLUDED_FAMILIES:
        problems.add(f"{name} {instance_type!r} is not allowed in a shadow test (SageMaker rejects "
                     f"{', '.join(f'ml.{f}' for f in SHADOW_EXCLUDED_FAMILIES)} instances for shadow variants)")


@functools.cache
def realtime_instance_types() -> tuple[str, ...]:
    """The instance types SageMaker offers for real-time endpoints: the ``ProductionVariantInstanceType`` enum of
    the SageMaker service model that the installed botocore ships (read once, about 0.1 s)."""
    import botocore.loaders

    model = botocore.loaders.create_loader().load_service_model("sagemaker", "service-2")
    return tuple(model["shapes"]["ProductionVariantInstanceType"]["enum"])


def check_realtime_instance_type(problems: Problems, name: str, instance_type: object) -> bool:
    """Whether ``instance_type`` is one SageMaker offers for real-time endpoints; if not, a problem naming the
    nearest ones. Tokens and non-strings pass (the pattern check reports those)."""
    if not isinstance(instance_type, str) or cdk.Token.is_unresolved(instance_type):
        return True
    known = realtime_instance_types()
    if instance_type in known:
        return True
    import botocore

    nearest = difflib.get_close_matches(instance_type, known, n=4)
    problems.add(f"{name} must be a SageMaker real-time instance type, got {instance_type!r}"
                 + (f"; nearest: {', '.join(nearest)}" if nearest else "")
                 + f" (botocore {botocore.__version__}'s list; a newer boto3 may know newer types)")
    return False


def has_gpu(instance_type: str) -> bool:
    """Whether the instance type has NVIDIA GPUs (so GPU metrics exist for it)."""
    return bool(re.fullmatch(r"(g|p)\d.*", instance_family(instance_type)))


class RoutingStrategy(enum.Enum):
    """How SageMaker routes requests among a variant's instances."""

    #: Send each request to the instance with the fewest outstanding requests.
    LEAST_OUTSTANDING_REQUESTS = "LEAST_OUTSTANDING_REQUESTS"
    #: Pick an instance at random (SageMaker's default).
    RANDOM = "RANDOM"


class VariantAutoscaling:
    """Target-tracking auto scaling of a variant's instance count on invocations per instance.

    :param max_capacity: the most instances. Required.
    :param target_invocations_per_instance: invocations per instance per minute to hold. Required.
    :param min_capacity: the fewest instances. Default: 1.
    :param scale_in_cooldown: wait after a scale-in. Default: 5 minutes.
    :param scale_out_cooldown: wait after a scale-out. Default: 1 minute.
    :param disable_scale_in: never remove instances. Default: False.
    """

    def __init__(
        self,
        *,
        max_capacity: int,
        target_invocations_per_instance: int | float,
        min_capacity: int = 1,
        scale_in_cooldown: cdk.Duration | None = None,
        scale_out_cooldown: cdk.Duration | None = None,
        disable_scale_in: bool = False,
    ) -> None:
        problems = Problems("VariantAutoscaling")
        min_ok = problems.check_int_range("min_capacity", min_capacity, 1)
        max_ok = problems.check_int_range("max_capacity", max_capacity, 1)
        if min_ok and max_ok and min_capacity > max_capacity:
            problems.add(f"min_capacity must not exceed max_capacity, got {min_capacity} > {max_capacity}")
        if problems.check_type("target_invocations_per_instance", target_invocations_per_instance,
                               (int, float), "a number") and target_invocations_per_instance <= 0:
            problems.add(f"target_invocations_per_instance must be positive, got {target_invocations_per_instance}")
        self.scale_in_cooldown = scale_in_cooldown or cdk.Duration.minutes(5)
        self.scale_out_cooldown = scale_out_cooldown or cdk.Duration.minutes(1)
        problems.check_seconds("scale_in_cooldown", self.scale_in_cooldown, 0, 86400)
        problems.check_seconds("scale_out_cooldown", self.scale_out_cooldown, 0, 86400)
        problems.check_type("disable_scale_in", disable_scale_in, bool, "a bool")
        problems.raise_if_any()
        self.min_capacity = min_capacity
        self.max_capacity = max_capacity
        self.target_invocations_per_instance = target_invocations_per_instance
        self.disable_scale_in = disable_scale_in


class Variant:
    """One variant of an endpoint: which model serves, on what and how many instances.

    A plain value, validated when made; the endpoint it joins adds the rules that depend on
    the other variants.

    :param model: the ServingModel this variant serves. Required.
    :param instance_type: SageMaker real-time instance type, ``ml.<family>.<size>``; the endpoint checks it
        against the types SageMaker offers for real-time endpoints (as the installed botocore lists them).
        Default: ``ml.m5.xlarge``.
    :param instance_count: initial instance count, at least 1. Default: 1.
    :param variant_name: 1–63 characters, ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``.
        Default: ``production`` or ``shadow``, by the role the variant plays.
    :param weight: InitialVariantWeight of a production variant, for A/B endpoints with several
        production variants. Default: 1. Leave unset on a shadow: its weight comes from the
        endpoint's ``sampling_percent``.
    :param volume_size_in_gb: ML storage volume per instance, 1–512 GB. Default: SageMaker's.
    :param model_data_download_timeout: 60–3600 seconds. Default: SageMaker's.
    :param container_startup_health_check_timeout: 60–3600 seconds. Default: SageMaker's.
    :param routing_strategy: a ``RoutingStrategy``. Default: SageMaker's (RANDOM).
    :param autoscaling: a ``VariantAutoscaling``. Default: a fixed instance count.
    """

    def __init__(
        self,
        *,
        model: ServingModel,
        instance_type: str = "ml.m5.xlarge",
        instance_count: int = 1,
        variant_name: str | None = None,
        weight: int | float | None = None,
        volume_size_in_gb: int | None = None,
        model_data_download_timeout: cdk.Duration | None = None,
        container_startup_health_check_timeout: cdk.Duration | None = None,
        routing_strategy: RoutingStrategy | None = None,
        autoscaling: VariantAutoscaling | None = None,
    ) -> None:
        problems = Problems("Variant")
        if not isinstance(model, ServingModel):
            problems.add(f"model must be a ServingModel, got {shown(model)}")
        problems.check_pattern("instance_type", instance_type, INSTANCE_TYPE_PATTERN,
                               "must be a SageMaker instance type like 'ml.m5.xlarge'")
        problems.check_int_range("instance_count", instance_count, 1)
        if variant_name is not None and problems.check_type("variant_name", variant_name, str, "a string"):
            check_variant_name(problems, "variant_name", variant_name)
        if weight is not None and problems.check_type("weight", weight, (int, float), "a number") and weight <= 0:
            problems.add(f"weight must be positive, got {weight}")
        if volume_size_in_gb is not None:
            problems.check_int_range("volume_size_in_gb", volume_size_in_gb, 1, 512)
        if model_data_download_timeout is not None:
            problems.check_seconds("model_data_download_timeout", model_data_download_timeout, 60, 3600)
        if container_startup_health_check_timeout is not None:
            problems.check_seconds("container_startup_health_check_timeout",
                                   container_startup_health_check_timeout, 60, 3600)
        if routing_strategy is not None and not isinstance(routing_strategy, RoutingStrategy):
            problems.add(f"routing_strategy must be a RoutingStrategy, got {shown(routing_strategy)}")
        if autoscaling is not None:
            if not isinstance(autoscaling, VariantAutoscaling):
                problems.add(f"autoscaling must be a VariantAutoscaling, got {shown(autoscaling)}")
            elif isinstance(instance_count, int) and not (
                    autoscaling.min_capacity <= instance_count <= autoscaling.max_capacity):
                problems.add(
                    f"instance_count must lie within autoscaling's min_capacity..max_capacity "
                    f"({autoscaling.min_capacity}..{autoscaling.max_capacity}), got {instance_count}")
        problems.raise_if_any()
        self.model = model
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.variant_name = variant_name
        self.weight = weight
        self.volume_size_in_gb = volume_size_in_gb
        self.model_data_download_timeout = model_data_download_timeout
        self.container_startup_health_check_timeout = container_startup_health_check_timeout
        self.routing_strategy = routing_strategy
        self.autoscaling = autoscaling

    def __repr__(self) -> str:
        return (f"Variant(name={self.variant_name!r}, model={self.model.node.path!r}, "
                f"instance_type={self.instance_type!r}, instance_count={self.instance_count})")


def check_variant_name(problems: Problems, name: str, value: str) -> None:
    if cdk.Token.is_unresolved(value):
        return
    if not 1 <= len(value) <= 63:
        problems.add(f"{name} must be 1 to 63 characters long, got {len(value)} characters in {value!r}")
    elif not re.fullmatch(VARIANT_NAME_PATTERN, value):
        problems.add(f"{name} must match [a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}} "
                     f"(letters, digits, inner hyphens), got {value!r}")


__all__ = ["ConfigError", "RoutingStrategy", "Variant", "VariantAutoscaling"]
