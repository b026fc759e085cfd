"""The example shadow test's typed configuration: defaults, cdk.json context, a JSON file."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from shadow_constructs import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CONTEXT_KEY = "shadow-test"
FILE_CONTEXT_KEY = "shadow-test-config"


@dataclass(frozen=True)
class ShadowTestConfig:
    """Every setting of the example shadow test (the reference churn scenario by default).

    Keys are the field names below; set them under ``"shadow-test"`` in cdk.json's context,
    in a JSON file named by ``-c shadow-test-config=path.json``, or one by one with
    ``-c shadow-test='{"sampling_percent": 20}'``. Later sources override earlier ones:
    defaults, cdk.json, the file, then the command line.
    """

    #: Physical endpoint name; None lets CloudFormation generate one.
    endpoint_name: str | None = None
    #: SageMaker XGBoost image version serving both models.
    xgboost_version: str = "1.7-1"
    #: Local model.tar.gz of the production model (version 1), relative to the project.
    production_model_artifact: str = "models/churn-v1/model.tar.gz"
    production_instance_type: str = "ml.m5.xlarge"
    production_instance_count: int = 2
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
    #: Block the serving containers' outbound network calls.
    network_isolation: bool = True

    @classmethod
    def load(cls, context: dict[str, Any] | None = None, file: str | Path | None = None) -> ShadowTestConfig:
        """Defaults, overridden by ``context`` (cdk.json), then by the JSON ``file``."""
        values: dict[str, Any] = {}
        for source, data in (("cdk.json context 'shadow-test'", context), (f"config file {file}", None)):
            if source.startswith("config file") and file is not None:
                path = Path(file) if Path(file).is_absolute() else ROOT / file
                try:
                    data = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError) as error:
                    raise ConfigError("ShadowTestConfig", [f"{FILE_CONTEXT_KEY} must name a readable JSON file, "
                                                            f"got {str(file)!r} ({error})"]) from None
            if data is None:
                continue
            if isinstance(data, str):
                try:
                    data = json.loads(data)
                except json.JSONDecodeError:
                    raise ConfigError("ShadowTestConfig", [f"{source} must be a JSON object, got {data!r}"]) from None
            if not isinstance(data, dict):
                raise ConfigError("ShadowTestConfig", [f"{source} must be a JSON object, got {type(data).__name__}"])
            values.update(data)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ShadowTestConfig:
        problems = []
        known = {f.name: f for f in fields(cls)}
        for key in values:
            if key not in known:
                problems.append(f"unknown key {key!r}; known keys: {', '.join(known)}")
        for key, value in values.items():
            if key in known and not _fits(known[key].type, value):
                problems.append(f"{key} must be {known[key].type}, got {value!r}")
        if problems:
            raise ConfigError("ShadowTestConfig", problems)
        return cls(**values)

    def replace(self, **changes: Any) -> ShadowTestConfig:
        return dataclasses.replace(self, **changes)


def _fits(annotation: str, value: Any) -> bool:
    kinds = {"str": str, "int": int, "bool": bool, "None": type(None)}
    allowed = tuple(kinds[part.strip()] for part in annotation.split("|"))
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)
