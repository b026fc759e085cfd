"""What PromotionWorkflow checks at synth, before anything reaches AWS: each check adds its problems (naming the
parameter and the value given) to the construct's ``Problems``, which raises them all at once."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aws_cdk as cdk
from shadow_runtime import looks as _looks
from shadow_runtime.verdict import Criteria

from .capture import CaptureStore
from .capture_analytics import CaptureAnalytics
from .endpoint_base import IShadowEndpoint, check_endpoint, no_shadow_problem
from .errors import Problems, shown
from .managed_test import ManagedShadowTest
from .phase import InstanceSettings, TestPhase, check_instance_override


def criteria_mapping(problems: Problems, criteria: Any) -> dict[str, Any]:
    """The criteria as the JSON the judge gets: the fields given (a ``Criteria`` gives those that differ from
    the defaults), each checked now by ``Criteria`` (type, range, metric keys): a bad value fails the synth,
    not the Judge step at the end of the test window."""
    if criteria is None:
        return {}
    if isinstance(criteria, Criteria):  # the Judge function's own class: what synthesizes is what the judge accepts
        defaults = Criteria()
        given = {f.name: getattr(criteria, f.name) for f in dataclasses.fields(criteria)
                 if f.name != "sampling_percent" and getattr(criteria, f.name) != getattr(defaults, f.name)}
    elif isinstance(criteria, Mapping):
        given = dict(criteria)
    else:
        problems.add(f"criteria must be a Criteria or a mapping of its fields, got {shown(criteria)}")
        return {}
    given = {k: list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v for k, v in given.items()}
    try:
        Criteria.from_mapping(given)
    except (ValueError, TypeError) as error:
        problems.add(f"criteria: {str(error).removeprefix('invalid criteria: ')}")
        return {}
    return given


class InconclusiveAction(enum.Enum):
    """What the workflow does when the verdict is INCONCLUSIVE."""

    #: Wait ``extension`` longer and judge again on a window grown by as much (up to ``max_extensions``); then
    #: ``after_extensions`` applies.
    EXTEND = "extend"
    #: Remove the shadow; production stays as it is.
    REMOVE_SHADOW = "remove_shadow"
    #: Change nothing; report and stop (the shadow keeps running, and billing, until someone ends it).
    KEEP = "keep"


def check_collaborators(problems: Problems, endpoint: Any, managed_test: Any, topic: Any, report_store: Any) -> None:
    if check_endpoint(problems, endpoint):
        later = endpoint.phase not in (None, TestPhase.SHADOW)
        if later or (not endpoint.shadow_variant_name and managed_test is None):
            problems.add(no_shadow_problem(endpoint) + ("" if later else " (or give managed_test)"))
    if managed_test is not None and not isinstance(managed_test, ManagedShadowTest):
        problems.add(f"managed_test must be a ManagedShadowTest, got {shown(managed_test)}")
    if topic is not None and not hasattr(topic, "topic_arn"):  # jsii interfaces allow no isinstance
        problems.add(f"topic must be an aws_sns.ITopic, got {shown(topic)}")
    if report_store is not None and not isinstance(report_store, CaptureStore):
        problems.add(f"report_store must be a CaptureStore, got {shown(report_store)}")

def check_agreement(problems: Problems, capture_analytics: Any, criteria: Mapping[str, Any]) -> None:
    if capture_analytics is not None and not isinstance(capture_analytics, CaptureAnalytics):
        problems.add(f"capture_analytics must be a CaptureAnalytics, got {shown(capture_analytics)}")
    elif capture_analytics is not None and criteria.get("min_agreement") is None:
        problems.add("capture_analytics measures the prediction agreement, so criteria must set min_agreement "
                     "(e.g. 0.95), got none")
    elif capture_analytics is None and criteria.get("min_agreement") is not None:
        problems.add(f"criteria min_agreement ({criteria['min_agreement']!r}) is measured on the captured data: "
                     "give capture_analytics")

def check_choices(problems: Problems, require_approval: Any, on_inconclusive: Any, max_extensions: Any,
                  after_extensions: Any = InconclusiveAction.REMOVE_SHADOW) -> None:
    problems.check_type("require_approval", require_approval, bool, "a bool")
    if not isinstance(on_inconclusive, InconclusiveAction):
        problems.add(f"on_inconclusive must be an InconclusiveAction, got {shown(on_inconclusive)}")
    problems.check_int_range("max_extensions", max_extensions, 0, 10)
    if after_extensions not in (InconclusiveAction.REMOVE_SHADOW, InconclusiveAction.KEEP):
        problems.add("after_extensions must be InconclusiveAction.REMOVE_SHADOW (the test stops costing) or "
                     f"InconclusiveAction.KEEP (the shadow keeps running and billing), got {shown(after_extensions)}")

def check_timing(problems: Problems, window: Any, extension: Any, poll_interval: Any, update_timeout: Any,
                  retry_interval: Any, duration: Any) -> None:
    """Each duration given within its range (seconds); unset ones take their defaults, which are."""
    for name, value, low, high in (("window", window, 600, 30 * 86400), ("extension", extension, 60, 7 * 86400),
                                   ("poll_interval", poll_interval, 1, 3600),
                                   ("update_timeout", update_timeout, 1, 86400),
                                   ("retry_interval", retry_interval, 1, 300),
                                   ("duration", duration, 3600, 30 * 86400)):
        if value is not None:
            problems.check_seconds(name, value, low, high)

def check_end(problems: Problems, managed_test: Any, ends_itself: Any, duration: Any,
               test_end: Any) -> datetime | None:
    """The test's planned end (UTC when naive), checked against the other ways of ending it."""
    if test_end is not None and problems.check_type("test_end", test_end, datetime, "a datetime") \
            and test_end.tzinfo is None:
        test_end = test_end.replace(tzinfo=UTC)
    if ends_itself is not None:
        problems.check_type("ends_itself", ends_itself, bool, "a bool")
    if managed_test is not None and ends_itself:
        problems.add("ends_itself applies to self-service tests; a managed test ends on its own schedule "
                     "(ManagedShadowTest schedule), got ends_itself=True with managed_test")
    if duration is not None and test_end is not None:
        problems.add("give duration or test_end, not both")
    return test_end

def check_looks(problems: Problems, look_interval: Any, duration: Any, self_ending: bool,
                 criteria: Mapping[str, Any], publishes: bool) -> None:
    """The look interval: 10 minutes to the duration, at most MAX_LOOKS looks, only for a test that ends itself;
    at most an hour when the looks publish the live agreement metrics (at least hourly)."""
    if look_interval is None:
        return
    if not self_ending:
        problems.add(f"look_interval ({shown(look_interval)}) applies to a test that ends itself after its duration; "
                     "this one does not (ends_itself=False, a managed test or a fixed test_end)")
        return
    if not problems.check_seconds("look_interval", look_interval, _looks.MIN_LOOK_SECONDS, 30 * 86400):
        return
    seconds = int(look_interval.to_seconds())
    test_seconds = int((duration or cdk.Duration.days(7)).to_seconds())
    if seconds > test_seconds:
        problems.add(f"look_interval ({seconds} s) must not be longer than the test's duration ({test_seconds} s)")
        return
    if publishes and seconds > 3600:
        problems.add(f"look_interval ({seconds} s) must be at most 3600 s with capture_analytics: each look publishes "
                     "the live agreement metrics, at least hourly")
    # ``criteria`` is criteria_mapping's result: checked by Criteria already (empty when it was not valid).
    count = _looks.look_count(test_seconds, seconds, Criteria.from_mapping(criteria).min_minutes)
    if count > _looks.MAX_LOOKS:
        problems.add(f"look_interval ({seconds} s) over duration ({test_seconds} s) makes {count} looks; an "
                     f"execution's history holds at most {_looks.MAX_LOOKS} (Step Functions keeps 25,000 events): "
                     f"choose a look_interval of at least {-(-test_seconds // _looks.MAX_LOOKS)} s")

def promotion_settings(problems: Problems, endpoint: Any, settings: Any,
                        override: Any) -> tuple[InstanceSettings, dict[str, Any] | None]:
    """The promoted variant's settings: given here, or the endpoint's (one definition for both the
    workflow and the endpoint's PROMOTED phase; given here and different there is an error)."""
    declared = isinstance(endpoint, IShadowEndpoint)
    own_settings = endpoint.promoted_instance_settings if declared else None
    own_override = endpoint.promoted_instance_override if declared else None
    if settings is not None and not isinstance(settings, InstanceSettings):
        problems.add(f"instance_settings must be an InstanceSettings, got {shown(settings)}")
        settings = None
    elif settings is not None and own_settings is not None and settings is not own_settings:
        problems.add(f"instance_settings {settings.name} differs from the endpoint's promoted_instance_settings "
                     f"{own_settings.name}: its PROMOTED phase would deploy another config than the workflow "
                     "builds; set it on the endpoint only")
    if override is not None:
        override = check_instance_override(problems, "instance_override", override)
        if override is not None and own_override is not None and override != own_override:
            problems.add(f"instance_override {override} differs from the endpoint's "
                         f"promoted_instance_override {own_override}; set it on the endpoint only")
    chosen_override = override or (dict(own_override) if own_override else None)
    return settings or own_settings or InstanceSettings.PRODUCTION, chosen_override
