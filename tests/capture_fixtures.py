"""Capture files in SageMaker's format and key layout, small enough to compute every measure by hand.

``write_reference_capture(root)`` writes endpoint ``churn`` (variants ``production`` and ``shadow``) over two
hours with every encoding and every problem the report counts; ``REFERENCE`` holds what the report must say.
``write_label_capture(root)`` writes endpoint ``labels`` with string labels and multi-value outputs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path


def record(inference_id: str | None, data: str, *, encoding: str = "CSV", content_type: str = "text/csv",
           time: str = "2026-11-25T14:00:00Z", event_id: str = "e") -> str:
    """One capture line: a CSV feature row in, ``data`` out (already encoded as ``encoding`` says)."""
    metadata = {"eventId": event_id, "inferenceTime": time}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "12,70.5,846.0,1,2,3,1,0",
                              "encoding": "CSV"},
            "endpointOutput": {"observedContentType": content_type, "mode": "OUTPUT", "data": data, "encoding": encoding}},
        "eventMetadata": metadata, "eventVersion": "0"}, separators=(",", ":"))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_file(root: Path, endpoint: str, variant: str, hour: str, name: str, lines: list[str]) -> Path:
    """Write ``lines`` to ``<root>/datacapture/<endpoint>/<variant>/<hour as yyyy/mm/dd/hh>/<name>.jsonl``."""
    path = Path(root, "datacapture", endpoint, variant, hour, f"{name}.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


# Paired predictions of the reference capture: (hour, production, shadow) per inferenceId id1..id7.
PAIRS = [("2026-11-25T14:00:00Z", 0.10, 0.12), ("2026-11-25T14:00:00Z", 0.40, 0.45), ("2026-11-25T14:00:00Z", 0.60, 0.58),
         ("2026-11-25T14:00:00Z", 0.90, 0.30), ("2026-11-25T15:00:00Z", 0.20, 0.205), ("2026-11-25T15:00:00Z", 0.70, 0.705),
         ("2026-11-25T15:00:00Z", 0.55, 0.45)]


def write_reference_capture(root: Path) -> Path:
    """Endpoint ``churn``: 7 pairs (CSV production; shadow in CSV, JSON number, JSON predictions, BASE64 CSV and
    BASE64 JSON), one unpaired record each side, and problems: production a malformed line and a record without
    inferenceId; shadow an unknown encoding, a duplicate inferenceId and undecodable base64."""
    h14, h15 = "2026/11/25/14", "2026/11/25/15"
    write_file(root, "churn", "production", h14, "p14", [
        record("id1", "0.10", time="2026-11-25T14:01:00Z"),
        record("id2", "0.40", time="2026-11-25T14:02:00Z"),
        '{"captureData": {"endpointOutput": ',  # cut off mid-write
        record("id3", "0.60", time="2026-11-25T14:03:00Z"),
        record("id4", "0.90", time="2026-11-25T14:04:00Z"),
        record(None, "0.33", time="2026-11-25T14:05:00Z"),
    ])
    write_file(root, "churn", "production", h15, "p15", [
        record("id5", "0.20", time="2026-11-25T15:01:00Z"),
        record("id6", "0.70", time="2026-11-25T15:02:00Z"),
        record("id7", "0.55", time="2026-11-25T15:03:00Z"),
        record("id8", "0.15", time="2026-11-25T15:04:00Z"),
    ])
    write_file(root, "churn", "shadow", h14, "s14", [
        record("id1", "0.12", encoding="JSON", content_type="application/json", time="2026-11-25T14:01:00Z"),
        record("id2", b64("0.45"), encoding="BASE64", time="2026-11-25T14:02:00Z"),
        record("id3", '{"predictions": [0.58]}', encoding="JSON", content_type="application/json", time="2026-11-25T14:03:00Z"),
        record("id4", "0.30\n", time="2026-11-25T14:04:00Z"),
        record("idx", "0.5", encoding="PROTOBUF", time="2026-11-25T14:06:00Z"),
    ])
    write_file(root, "churn", "shadow", h15, "s15", [
        record("id5", "0.205", time="2026-11-25T15:01:00Z", event_id="first"),
        record("id6", b64("[0.705]"), encoding="BASE64", content_type="application/json", time="2026-11-25T15:02:00Z"),
        record("id7", "0.45", time="2026-11-25T15:03:00Z"),
        record("id9", "0.25", time="2026-11-25T15:05:00Z"),
        record("id5", "0.99", time="2026-11-25T15:06:00Z", event_id="again"),
        record("idy", "%%%not-base64%%%", encoding="BASE64", time="2026-11-25T15:07:00Z"),
    ])
    return root / "datacapture"


REFERENCE = {
    "variants": {
        "production": {"files": 2, "records": 10, "usable": 8, "outside_window": 0, "malformed": 1, "missing_inference_id": 1,
                       "no_output": 0, "unknown_encoding": 0, "undecodable_output": 0, "duplicate_inference_id": 0},
        "shadow": {"files": 2, "records": 11, "usable": 8, "outside_window": 0, "malformed": 0, "missing_inference_id": 0,
                   "no_output": 0, "unknown_encoding": 1, "undecodable_output": 1, "duplicate_inference_id": 1},
    },
    "pairing": {"paired": 7, "unmatched_production": 1, "unmatched_shadow": 1, "numeric_pairs": 7, "label_pairs": 0,
                "kind_mismatch": 0, "length_mismatch": 0},
}


def write_label_capture(root: Path) -> Path:
    """Endpoint ``labels``: string labels (CSV and JSON), a two-value numeric output each side, a kind mismatch
    and a length mismatch; and endpoint ``other`` with one file, so the capture holds two endpoints."""
    hour = "2026/11/25/09"
    write_file(root, "labels", "blue", hour, "p", [
        record("a", "yes"), record("b", "no"), record("c", "yes"), record("d", "no"),
        record("m", "0.1,0.8"), record("k", "0.3"), record("l", "0.1,0.2"),
    ])
    write_file(root, "labels", "blue-shadow", hour, "s", [
        record("a", '["yes"]', encoding="JSON", content_type="application/json"), record("b", "yes"),
        record("c", '"yes"', encoding="JSON", content_type="application/json"), record("d", b64("no"), encoding="BASE64"),
        record("m", '{"predictions": [0.3, 0.6]}', encoding="JSON", content_type="application/json"),
        record("k", "maybe"), record("l", "0.1"),
    ])
    write_file(root, "other", "AllTraffic", hour, "o", [record("z", "0.5")])
    return root / "datacapture"


def psi_oracle(production, shadow, epsilon=0.0001):
    """PSI by its definition (ten bins at production's deciles), with numpy: the engine's oracle."""
    import numpy as np

    cuts = np.quantile(production, np.arange(1, 10) / 10)
    p = np.bincount(np.searchsorted(cuts, production, side="left"), minlength=10) / len(production)
    s = np.bincount(np.searchsorted(cuts, shadow, side="left"), minlength=10) / len(shadow)
    p, s = np.maximum(p, epsilon), np.maximum(s, epsilon)
    return float(np.sum((s - p) * np.log(s / p)))
