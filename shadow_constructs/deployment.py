"""Deployment guardrails: how SageMaker shifts traffic when the endpoint's config changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from .errors import Problems, shown


class CapacitySize:
    """A share of the fleet: a percentage of its capacity or a number of instances."""

    def __init__(self, kind: str, value: int) -> None:  # use percent() or instances()
        self.kind = kind
        self.value = value

    @staticmethod
    def percent(value: int) -> CapacitySize:
        """A percentage of the production fleet's capacity."""
        return CapacitySize("CAPACITY_PERCENT", value)

    @staticmethod
    def instances(value: int) -> CapacitySize:
        """A number of instances."""
        return CapacitySize("INSTANCE_COUNT", value)

    def share_of(self, fleet: int) -> float:
        """This size as a fraction of a fleet of ``fleet`` instances."""
        return self.value / 100 if self.kind == "CAPACITY_PERCENT" else self.value / fleet

    def __repr__(self) -> str:
        return f"{self.value}%" if self.kind == "CAPACITY_PERCENT" else f"{self.value} instance(s)"


class TrafficRouting:
    """How traffic moves from the old (blue) fleet to the new (green) one."""

    def __init__(self, kind: str, wait: cdk.Duration, size: CapacitySize | None) -> None:
        self.kind = kind
        self.wait = wait
        self.size = size

    @staticmethod
    def all_at_once(wait: cdk.Duration | None = None) -> TrafficRouting:
        """Shift everything at once, then bake for ``wait``. Default wait: 5 minutes."""
        return TrafficRouting("ALL_AT_ONCE", wait or cdk.Duration.minutes(5), None)

    @staticmethod
    def canary(size: CapacitySize, wait: cdk.Duration | None = None) -> TrafficRouting:
        """Shift a canary of ``size`` (at most 50% of the fleet), wait, then the rest.

        Default wait: 5 minutes.
        """
        return TrafficRouting("CANARY", wait or cdk.Duration.minutes(5), size)

    @staticmethod
    def linear(step: CapacitySize, wait: cdk.Duration | None = None) -> TrafficRouting:
        """Shift ``step`` (10–50% of the fleet) at a time, waiting ``wait`` between steps.

        Default wait: 5 minutes.
        """
        return TrafficRouting("LINEAR", wait or cdk.Duration.minutes(5), step)


class DeploymentGuardrails:
    """Blue/green update policy and automatic rollback for changes to the endpoint.

    :param traffic_routing: a ``TrafficRouting``. Default: all at once, 5 minutes baking.
    :param termination_wait: keep the old fleet this long after the shift, 0–3600 s.
        Default: 0.
    :param maximum_execution_timeout: give up (and roll back) after this long, 600–28800 s.
        Default: SageMaker's.
    :param rollback_alarms: 1–10 CloudWatch alarms; any in ALARM during the update rolls it
        back. Default: none (more can be added with ``ShadowEndpoint.add_rollback_alarm``).
    """

    def __init__(
        self,
        *,
        traffic_routing: TrafficRouting | None = None,
        termination_wait: cdk.Duration | None = None,
        maximum_execution_timeout: cdk.Duration | None = None,
        rollback_alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        problems = Problems("DeploymentGuardrails")
        routing = traffic_routing or TrafficRouting.all_at_once()
        if not isinstance(routing, TrafficRouting):
            problems.add(f"traffic_routing must be a TrafficRouting, got {shown(traffic_routing)}")
        else:
            problems.check_seconds("traffic_routing wait", routing.wait, 0, 3600)
            if routing.size is not None:
                size_name = "canary size" if routing.kind == "CANARY" else "linear step"
                low = 1 if routing.kind == "CANARY" else 10
                if problems.check_int_range(f"{size_name}", routing.size.value, 1) \
                        and routing.size.kind == "CAPACITY_PERCENT" and not low <= routing.size.value <= 50:
                    problems.add(f"{size_name} must be between {low}% and 50% of the fleet, "
                                 f"got {routing.size.value}%")
        self.termination_wait = termination_wait or cdk.Duration.seconds(0)
        problems.check_seconds("termination_wait", self.termination_wait, 0, 3600)
        if maximum_execution_timeout is not None:
            problems.check_seconds("maximum_execution_timeout", maximum_execution_timeout, 600, 28800)
        alarms: list[cloudwatch.IAlarm] = []
        if isinstance(rollback_alarms, (str, bytes)):
            problems.add(f"rollback_alarms must be a list of alarms, got {shown(rollback_alarms)}")
        else:
            alarms = list(rollback_alarms)
            if len(alarms) > 10:
                problems.add(f"rollback_alarms takes at most 10 alarms, got {len(alarms)}")
            for alarm in alarms:
                if not hasattr(alarm, "alarm_name"):
                    problems.add(f"rollback_alarms entries must be CloudWatch alarms, got {shown(alarm)}")
        problems.raise_if_any()
        self.traffic_routing = routing
        self.maximum_execution_timeout = maximum_execution_timeout
        self.rollback_alarms = alarms

    def render(self, rollback_alarm_names: Sequence[str] = ()) -> dict[str, Any]:
        """These guardrails as SageMaker's DeploymentConfig, with ``rollback_alarm_names`` as its auto-rollback
        alarms: the one rendering for both the endpoint's ``AWS::SageMaker::Endpoint`` and the promotion
        workflow's UpdateEndpoint (CloudFormation and the API spell its members alike)."""
        routing = self.traffic_routing
        traffic: dict[str, Any] = {"Type": routing.kind, "WaitIntervalInSeconds": seconds(routing.wait)}
        if routing.size is not None:
            traffic["CanarySize" if routing.kind == "CANARY" else "LinearStepSize"] = {
                "Type": routing.size.kind, "Value": routing.size.value}
        policy: dict[str, Any] = {"TrafficRoutingConfiguration": traffic,
                                  "TerminationWaitInSeconds": seconds(self.termination_wait)}
        if self.maximum_execution_timeout is not None:
            policy["MaximumExecutionTimeoutInSeconds"] = seconds(self.maximum_execution_timeout)
        config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
        if rollback_alarm_names:
            config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in rollback_alarm_names]}
        return config


@jsii.implements(cdk.IStableAnyProducer)
class _Producer:
    def __init__(self, produce: Callable[[], Any]) -> None:
        self._produce = produce

    def produce(self) -> Any:
        return self._produce()


def lazy_any(produce: Callable[[], Any]) -> Any:
    """A value ``produce()`` gives at synth (so that what is added later, such as rollback alarms, is in it)."""
    return cdk.Lazy.any(_Producer(produce))


def seconds(duration: cdk.Duration | None) -> int | None:
    """Whole seconds of ``duration`` (None stays None)."""
    return None if duration is None else int(duration.to_seconds())


def alarm_name_of(alarm: cloudwatch.IAlarm) -> str:
    """An alarm's physical name as a literal when it has one, so that referring to it adds no dependency
    (alarms on an endpoint's metrics may also guard that endpoint's updates)."""
    cfn = alarm.node.default_child if isinstance(alarm, Construct) else None
    name = cfn.alarm_name if isinstance(cfn, cloudwatch.CfnAlarm) else None
    return name if isinstance(name, str) and not cdk.Token.is_unresolved(name) else alarm.alarm_name


__all__ = ["CapacitySize", "DeploymentGuardrails", "TrafficRouting"]
