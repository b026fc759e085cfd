"""Where a shadow test stands (``TestPhase``) and how a promotion sizes the new production (``InstanceSettings``)."""

from __future__ import annotations

import enum

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


__all__ = ["METADATA_KEY", "OVERRIDE_FIELDS", "InstanceSettings", "TestPhase"]
