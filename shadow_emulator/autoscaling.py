"""Application Auto Scaling from CloudFormation: moto's CloudFormation does not know
``AWS::ApplicationAutoScaling::ScalableTarget`` or ``AWS::ApplicationAutoScaling::ScalingPolicy`` (it skips them), so a
deployed variant's auto scaling never existed in the emulator and the promotion workflow's suspend-and-restore of it
ran on nothing. These models create them in moto's Application Auto Scaling backend, as CloudFormation does
(a target's physical id is ``ResourceId|ScalableDimension|ServiceNamespace``, which a policy's ``ScalingTargetId``
refers to). The SageMaker double installs them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from moto.applicationautoscaling.models import applicationautoscaling_backends

from .athena import _cfn_model


def _target_id(properties: dict[str, Any]) -> tuple[str, str, str]:
    """(service namespace, resource id, scalable dimension) of a target or of a policy's target."""
    if properties.get("ScalingTargetId"):
        resource_id, dimension, namespace = str(properties["ScalingTargetId"]).split("|")
        return namespace, resource_id, dimension
    return properties["ServiceNamespace"], properties["ResourceId"], properties["ScalableDimension"]


def _create_target(properties: dict[str, Any], name: str, account: str, region: str) -> str:
    namespace, resource_id, dimension = _target_id(properties)
    applicationautoscaling_backends[account][region].register_scalable_target(
        namespace, resource_id, dimension, int(properties["MinCapacity"]), int(properties["MaxCapacity"]),
        properties.get("RoleARN", ""), properties.get("SuspendedState") or {})
    return f"{resource_id}|{dimension}|{namespace}"


def _delete_target(properties: dict[str, Any], name: str, account: str, region: str) -> None:
    namespace, resource_id, dimension = _target_id(properties)
    backend = applicationautoscaling_backends[account][region]
    if backend._scalable_target_exists(resource_id, dimension):
        backend.deregister_scalable_target(namespace, resource_id, dimension)


def _create_policy(properties: dict[str, Any], name: str, account: str, region: str) -> str:
    namespace, resource_id, dimension = _target_id(properties)
    # moto keeps the configuration itself as the policy's body (as its PutScalingPolicy passes it)
    body = properties.get("TargetTrackingScalingPolicyConfiguration") or properties.get("StepScalingPolicyConfiguration")
    policy = applicationautoscaling_backends[account][region].put_scaling_policy(
        properties.get("PolicyName", name), namespace, resource_id, dimension, body, properties.get("PolicyType"))
    return policy.policy_arn


def _delete_policy(properties: dict[str, Any], name: str, account: str, region: str) -> None:
    namespace, resource_id, dimension = _target_id(properties)
    backend = applicationautoscaling_backends[account][region]
    with contextlib.suppress(Exception):  # already gone with its target (the workflow may have removed it)
        backend.delete_scaling_policy(properties.get("PolicyName", name), namespace, resource_id, dimension)


MODELS = {
    "AWS::ApplicationAutoScaling::ScalableTarget": _cfn_model("AWS::ApplicationAutoScaling::ScalableTarget",
                                                              _create_target, _delete_target),
    "AWS::ApplicationAutoScaling::ScalingPolicy": _cfn_model("AWS::ApplicationAutoScaling::ScalingPolicy",
                                                             _create_policy, _delete_policy),
}
