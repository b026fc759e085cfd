"""Where a shadow test stands (``TestPhase``) and how a promotion sizes the new production (``InstanceSettings``)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from constructs import IConstruct

from .errors import ConfigError, Problems, shown
from .variant import INSTANCE_TYPE_PATTERN, check_realtime_instance_type

#: The resource metadata key that marks this library's resources in a template (read by ``shadow-test``).
METADATA_KEY = "shadow-constructs"
#: The CDK context key that chooses the phase of an app's endpoints: ``cdk deploy -c shadow-phase=promoted``.
PHASE_CONTEXT_KEY = "shadow-phase"


class TestPhase(enum.Enum):
    """The phase a ``ShadowEndpoint`` renders, so a deploy follows what the promotion workflow did.

    After the workflow promotes, deploy the app in ``PROMOTED``; after it removes the shadow, in
    ``ROLLED_BACK``. Either renders exactly the config the workflow built from the live one, so that
    deploy changes nothing that serves (``shadow-test drift`` checks this before a deploy).
    """

    __test__ = False  # not a pytest test class, despite its name

    #: Production plus the shadow, which gets its sampled share of the requests.
    SHADOW = "SHADOW"
    #: The shadow's model serves in the production variant (same variant name, the chosen instance
    #: settings, the same capture and keys); no shadow.
    PROMOTED = "PROMOTED"
    #: Production alone, as it was; no shadow.
    ROLLED_BACK = "ROLLED_BACK"

    @classmethod
    def from_context(cls, scope: IConstruct, key: str = PHASE_CONTEXT_KEY) -> TestPhase:
        """The phase the CDK context ``key`` names (``shadow``, ``promoted`` or ``rolled_back``, any case), so one
        app deploys every phase: ``cdk deploy -c shadow-phase=promoted`` after the workflow promoted.

        Default (the key unset): SHADOW. Raises ``ConfigError`` naming the key and the value for anything else.
        """
        phase, problem = phase_in_context(scope, key)
        if problem:
            raise ConfigError(f"TestPhase.from_context({scope.node.path!r})", [problem])
        return phase


def phase_in_context(scope: IConstruct, key: str = PHASE_CONTEXT_KEY) -> tuple[TestPhase, str | None]:
    """The phase the context ``key`` names at ``scope`` (SHADOW when unset), and the problem with its value, if any."""
    value = scope.node.try_get_context(key)
    if value is None:
        return TestPhase.SHADOW, None
    names = {phase.value.lower(): phase for phase in TestPhase}
    if isinstance(value, str) and value.strip().lower() in names:
        return names[value.strip().lower()], None
    return TestPhase.SHADOW, (f"context {key!r} must be one of {', '.join(names)} (cdk deploy -c {key}=promoted), "
                              f"got {shown(value)}")


class InstanceSettings(enum.Enum):
    """Which instance settings the promoted production variant gets."""

    #: Keep production's instance type and count.
    PRODUCTION = "production"
    #: Take the shadow's instance type and count.
    SHADOW = "shadow"


#: Members of ProductionVariant an instance override may set (the rest stay production's).
OVERRIDE_FIELDS = ("InstanceType", "InitialInstanceCount", "VolumeSizeInGB", "RoutingConfig")



def check_instance_override(problems: Problems, name: str, override: Any) -> dict[str, Any] | None:
    """An instance override (some of ``OVERRIDE_FIELDS``, a valid type and count) as a dict, or None with a
    problem noted."""
    if not isinstance(override, Mapping) or not override or set(override) - set(OVERRIDE_FIELDS):
        problems.add(f"{name} must set some of {', '.join(OVERRIDE_FIELDS)}, got "
                     f"{sorted(override) if isinstance(override, Mapping) else shown(override)}")
        return None
    if "InstanceType" in override and problems.check_pattern(
            f"{name} InstanceType", override["InstanceType"], INSTANCE_TYPE_PATTERN, "must be a SageMaker instance type"):
        check_realtime_instance_type(problems, f"{name} InstanceType", override["InstanceType"])
    if "InitialInstanceCount" in override:
        problems.check_int_range(f"{name} InitialInstanceCount", override["InitialInstanceCount"], 1)
    return dict(override)


__all__ = ["METADATA_KEY", "OVERRIDE_FIELDS", "PHASE_CONTEXT_KEY", "InstanceSettings", "TestPhase", "check_instance_override",
           "phase_in_context"]
