"""How the promotion workflow rewrites an endpoint's config. Pure logic over SageMaker API shapes.

The new config is always built from the LIVE one (DescribeEndpointConfig), never from the
template: whatever the endpoint runs now is what gets carried over.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

# Members of ProductionVariant that CreateEndpointConfig accepts (DescribeEndpointConfig returns the same shape).
VARIANT_FIELDS = (
    "VariantName", "ModelName", "InitialInstanceCount", "InstanceType", "InitialVariantWeight", "AcceleratorType",
    "CoreDumpConfig", "ServerlessConfig", "VolumeSizeInGB", "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds", "EnableSSMAccess", "ManagedInstanceScaling", "RoutingConfig",
    "InferenceAmiVersion", "CapacityReservationConfig",
)
INSTANCE_FIELDS = ("InstanceType", "InitialInstanceCount", "VolumeSizeInGB", "ManagedInstanceScaling",
                   "RoutingConfig", "InferenceAmiVersion", "CapacityReservationConfig", "AcceleratorType")
# Top-level members carried over unchanged from the live config.
CARRIED_FIELDS = ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig", "VpcConfig",
                  "ExecutionRoleArn", "EnableNetworkIsolation")
INSTANCE_SETTINGS = ("production", "shadow", "override")


def config_name(endpoint_name: str, action: str, token: str) -> str:
    """A deterministic, valid EndpointConfigName: re-running the same step reuses the same name."""
    digest = hashlib.sha256(f"{endpoint_name}|{action}|{token}".encode()).hexdigest()[:10]
    label = re.sub(r"[^a-zA-Z0-9]+", "-", action).strip("-")  # SageMaker names allow letters, digits, hyphens
    base = re.sub(r"[^a-zA-Z0-9-]", "-", endpoint_name).strip("-")[: 63 - len(label) - 12].rstrip("-")
    return f"{base}-{label}-{digest}"


def _variant(source: Mapping[str, Any]) -> dict[str, Any]:
    return {k: source[k] for k in VARIANT_FIELDS if k in source}


def _single(live: Mapping[str, Any], key: str) -> dict[str, Any]:
    variants = live.get(key) or []
    if len(variants) != 1:
        raise ValueError(f"{key} must hold exactly one variant to promote or remove a shadow, got {len(variants)}")
    return variants[0]


def promoted_config(live: Mapping[str, Any], name: str, instance_settings: str = "production",
                    override: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """CreateEndpointConfig parameters that put the shadow's model into the production variant.

    The production VariantName is kept (blue/green guardrails then apply), the shadow is gone,
    capture, KMS and the other config members are carried over. ``instance_settings`` picks the
    instance settings of the new production variant: the current production's, the shadow's,
    or ``override`` (members of ProductionVariant such as InstanceType and InitialInstanceCount).
    """
    if instance_settings not in INSTANCE_SETTINGS:
        raise ValueError(f"instance_settings must be one of {', '.join(INSTANCE_SETTINGS)}, got {instance_settings!r}")
    production = _single(live, "ProductionVariants")
    shadow = _single(live, "ShadowProductionVariants")
    variant = _variant(production)
    variant["ModelName"] = shadow["ModelName"]
    if instance_settings == "shadow":
        for key in INSTANCE_FIELDS:
            variant.pop(key, None)
            if key in shadow:
                variant[key] = shadow[key]
    elif instance_settings == "override":
        unknown = sorted(set(override or {}) - set(INSTANCE_FIELDS))
        if not override or unknown:
            raise ValueError(f"override must set instance settings among {', '.join(INSTANCE_FIELDS)}, "
                             f"got {dict(override or {})!r}")
        variant.update(override)
    return _config(live, name, [variant])


def shadow_removed_config(live: Mapping[str, Any], name: str) -> dict[str, Any]:
    """CreateEndpointConfig parameters for the same endpoint without its shadow; production untouched."""
    return _config(live, name, [_variant(v) for v in live.get("ProductionVariants") or []])


def _config(live: Mapping[str, Any], name: str, production: list[dict[str, Any]]) -> dict[str, Any]:
    request: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": production}
    for key in CARRIED_FIELDS:
        if live.get(key) not in (None, {}, []):  # an empty member (as some emulators return) means "not set"
            request[key] = live[key]
    return request


def autoscaling_changes(live: Mapping[str, Any], new: Mapping[str, Any],
                        registered: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Which registered variants to deregister before UpdateEndpoint, and which to register again after.

    SageMaker refuses an update that removes or retypes a variant registered with Application
    Auto Scaling. ``registered`` maps variant names to their scalable target (MinCapacity,
    MaxCapacity); a variant kept with the same instance type needs nothing.
    """
    old = {v["VariantName"]: v for v in [*(live.get("ProductionVariants") or []),
                                         *(live.get("ShadowProductionVariants") or [])]}
    kept = {v["VariantName"]: v for v in new.get("ProductionVariants") or []}
    deregister, restore = [], []
    for name in sorted(registered):
        if name not in kept:
            deregister.append(name)
        elif old.get(name, {}).get("InstanceType") != kept[name].get("InstanceType"):
            deregister.append(name)
            restore.append(name)
    return deregister, restore
