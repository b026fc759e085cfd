"""The example app's typed configuration: defaults, cdk.json context, a JSON file."""

from __future__ import annotations

import json
from dataclasses import Field, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aws_cdk as cdk

from shadow_constructs import ConfigError

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T", bound="_Config")


class _Config:
    """Loading and checking shared by the app's configurations (frozen dataclasses)."""

    #: cdk.json context key of the settings, and of an optional JSON file overriding them.
    CONTEXT_KEY: ClassVar[str]
    FILE_CONTEXT_KEY: ClassVar[str]
    #: Set by @dataclass on each subclass.
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @classmethod
    def load(cls: type[T], context: dict[str, Any] | str | None = None, file: str | Path | None = None) -> T:
        """Defaults, overridden by ``context`` (cdk.json, or a JSON string from ``-c``), then by ``file``."""
        values: dict[str, Any] = {}
        sources = [(f"cdk.json context {cls.CONTEXT_KEY!r}", context)]
        if file is not None:
            path = Path(file) if Path(file).is_absolute() else ROOT / file
            try:
                sources.append((f"config file {file}", json.loads(path.read_text())))
            except (OSError, json.JSONDecodeError) as error:
                raise ConfigError(cls.__name__, [f"{cls.FILE_CONTEXT_KEY} must name a readable JSON file, "
                                                 f"got {str(file)!r} ({error})"]) from None
        for source, data in sources:
            if data is None:
                continue
            if isinstance(data, str):
                try:
                    data = json.loads(data)
                except json.JSONDecodeError:
                    raise ConfigError(cls.__name__, [f"{source} must be a JSON object, got {data!r}"]) from None
            if not isinstance(data, dict):
                raise ConfigError(cls.__name__, [f"{source} must be a JSON object, got {type(data).__name__}"])
            values.update(data)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any]) -> T:
        # Each field's annotation as written ("int | None"): a string under ``from __future__ import annotations``.
        known = {f.name: str(f.type) for f in fields(cls)}
        problems = [f"unknown key {key!r}; known keys: {', '.join(known)}" for key in values if key not in known]
        problems += [f"{key} must be {known[key]}, got {value!r}" for key, value in values.items()
                     if key in known and not _fits(known[key], value)]
        if problems:
            raise ConfigError(cls.__name__, problems)
        return cls(**values)


def parse_time(key: str, value: str | None, problems: list[str]) -> datetime | None:
    """An ISO 8601 time setting ("2026-12-02T09:00:00Z") as a datetime; a problem noted when malformed."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{key} must be an ISO 8601 time like '2026-12-02T09:00:00Z', got {value!r}")
        return None


def capture_removal(destroy: bool) -> cdk.RemovalPolicy:
    """The capture store's removal policy from the ``destroy_capture_on_removal`` setting."""
    return cdk.RemovalPolicy.DESTROY if destroy else cdk.RemovalPolicy.RETAIN


def _fits(annotation: str, value: Any) -> bool:
    kinds = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict, "None": type(None)}
    allowed = tuple(kinds[part.strip()] for part in annotation.split("|"))
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


@dataclass(frozen=True)
class ShadowTestConfig(_Config):
    """Every setting of the example shadow test (the reference churn scenario by default).

    Keys are the field names below; set them under ``"shadow-test"`` in cdk.json's context,
    in a JSON file named by ``-c shadow-test-config=path.json``, or with
    ``-c shadow-test='{"sampling_percent": 20}'``. Later sources override earlier ones.
    """

    CONTEXT_KEY: ClassVar[str] = "shadow-test"
    FILE_CONTEXT_KEY: ClassVar[str] = "shadow-test-config"

    #: Physical endpoint name (fixed, so its alarms can exist before it and guard its updates).
    endpoint_name: str | None = "churn-shadow-test"
    #: SageMaker XGBoost image version serving both models.
    xgboost_version: str = "1.7-1"
    #: Local model.tar.gz of the production model (version 1), relative to the project.
    production_model_artifact: str = "models/churn-v1/model.tar.gz"
    production_instance_type: str = "ml.m5.xlarge"
    production_instance_count: int = 2
    #: Target-tracking auto scaling of the production variant (``VariantAutoscaling`` fields, e.g.
    #: {"max_capacity": 4, "target_invocations_per_instance": 1000}; min_capacity defaults to
    #: production_instance_count). None: a fixed fleet. The promotion workflow suspends and restores it.
    production_autoscaling: dict | None = None
    #: Local model.tar.gz of the candidate (version 2), relative to the project.
    shadow_model_artifact: str = "models/churn-v2/model.tar.gz"
    shadow_instance_type: str = "ml.m5.xlarge"
    shadow_instance_count: int = 1
    #: Share of production requests copied to the shadow, 1-100.
    sampling_percent: int = 50
    #: Capture requests and responses of both variants to S3.
    capture_enabled: bool = True
    #: Share of requests captured, 0-100.
    capture_sampling_percent: int = 100
    capture_prefix: str = "datacapture"
    #: Delete captured objects after this many days; None keeps them.
    capture_expiration_days: int | None = None
    #: Delete the capture bucket and its data on `cdk destroy` (demos only).
    destroy_capture_on_removal: bool = False
    #: Blue/green traffic shifting on updates: "all_at_once", "canary" or "linear".
    traffic_routing: str = "all_at_once"
    #: Canary size or linear step, percent of the production fleet.
    traffic_routing_percent: int = 50
    #: Minutes between traffic shifting steps (baking time for all_at_once).
    traffic_routing_wait_minutes: int = 5
    #: Roll updates back when a shadow regression alarm fires.
    rollback_on_alarms: bool = True
    #: Alarm when shadow / production ModelLatency p99 exceeds this.
    alarm_latency_ratio: int | float = 1.2
    #: Alarm when the shadow's error rate exceeds production's by this many percentage points.
    alarm_error_rate_increase: int | float = 1.0
    #: Block the serving containers' outbound network calls.
    network_isolation: bool = True
    #: Where the test is: "shadow" (v2 shadows v1), "promoted" (v2 serves, as the workflow left it) or
    #: "rolled_back" (v1 serves, no shadow). Set it after the workflow acts, so `cdk deploy` follows.
    phase: str = "shadow"
    #: Instance settings the promotion gives v2: "production" (production's) or "shadow" (the shadow's).
    promoted_instance_settings: str = "production"
    #: Hours the shadow test runs after the deploy that creates it, 1-720: then the promotion workflow runs by
    #: itself (promote, remove, or the inconclusive action). Default 168 (7 days, SageMaker's managed default).
    test_duration_hours: int = 168
    #: The test ends itself after test_duration_hours (or at test_end). False leaves the shadow running until
    #: someone starts the workflow (explicit, not the default).
    ends_itself: bool = True
    #: Planned end of the test instead, ISO 8601 ("2026-12-02T09:00:00Z"): EventBridge Scheduler starts the
    #: promotion workflow then. None: test_duration_hours after the deploy.
    test_end: str | None = None
    #: Minutes of traffic the promotion workflow judges, ending when it runs (10 or more), when started by hand.
    promotion_window_minutes: int = 60
    #: Minutes between the interim looks of a test that ends itself (10 to the duration): each judges all data
    #: so far, and a PROMOTE or REJECT ends the test then. Default 60.
    look_interval_minutes: int = 60
    #: Verdict criteria (``shadow_runtime.verdict.Criteria`` fields, e.g. {"latency_tolerance": 0.1});
    #: None: the defaults, with the sampling share filled in by the workflow.
    promotion_criteria: dict | None = None
    #: A person approves a PROMOTE before the workflow acts (SendTaskSuccess with {"approved": true} and the task
    #: token the verdict topic carries).
    require_approval: bool = False
    #: What an INCONCLUSIVE verdict does: "extend" (judge again later, twice; then remove the shadow),
    #: "remove_shadow" or "keep" (the shadow keeps running and billing: explicit).
    promotion_on_inconclusive: str = "extend"
    #: Seconds between DescribeEndpoint calls while the workflow's UpdateEndpoint runs.
    promotion_poll_seconds: int = 60


@dataclass(frozen=True)
class ManagedTestConfig(_Config):
    """The example managed shadow test on an existing endpoint (stack ``ChurnManagedShadowTest``).

    Set under ``"managed-test"`` in cdk.json, or in a file named by ``-c managed-test-config=...``.
    """

    CONTEXT_KEY: ClassVar[str] = "managed-test"
    FILE_CONTEXT_KEY: ClassVar[str] = "managed-test-config"

    #: The existing endpoint to test on. None leaves the stack out of the app.
    endpoint_name: str | None = None
    production_variant_name: str = "AllTraffic"
    #: Name of the SageMaker model the production variant serves.
    production_model_name: str = "churn-v1"
    production_instance_type: str = "ml.m5.xlarge"
    production_instance_count: int = 2
    #: Local model.tar.gz of the candidate.
    shadow_model_artifact: str = "models/churn-v2/model.tar.gz"
    shadow_variant_name: str = "shadow"
    shadow_instance_type: str = "ml.m5.xlarge"
    shadow_instance_count: int = 1
    xgboost_version: str = "1.7-1"
    sampling_percent: int = 50
    #: Test start, ISO 8601 (e.g. "2026-12-01T09:00:00Z"); None starts on creation (then 7 days).
    start: str | None = None
    #: Test length in hours, 1-720 (needs start unless 168).
    duration_hours: int = 168
    #: "running", "complete" (keep production), "promote" (shadow replaces production) or "cancel".
    outcome: str = "running"
    capture_enabled: bool = True
    destroy_capture_on_removal: bool = False
    #: Verdict criteria of the workflow that ends the managed test (``Criteria`` fields, e.g.
    #: {"latency_tolerance": 0.1}); None: the defaults, with the sampling share filled in by the workflow.
    promotion_criteria: dict | None = None
