"""Where a shadow test stands (``TestPhase``) and how a promotion sizes the new production (``InstanceSettings``)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from .errors import Problems, shown
from .variant import INSTANCE_TYPE_PATTERN

#: The resource metadata key that marks this library's resources in a template (read by ``shadow-test``).
METADATA_KEY = "shadow-constructs"


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
    if "InstanceType" in override:
        problems.check_pattern(f"{name} InstanceType", override["InstanceType"], INSTANCE_TYPE_PATTERN,
                               "must be a SageMaker instance type")
    if "InitialInstanceCount" in override:
        problems.check_int_range(f"{name} InitialInstanceCount", override["InitialInstanceCount"], 1)
    return dict(override)


__all__ = ["METADATA_KEY", "OVERRIDE_FIELDS", "InstanceSettings", "TestPhase", "check_instance_override"]
