"""From GetMetricData results to the aligned per-minute series the verdict reads. Stdlib only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

ROLES = ("production", "shadow")


def utc(moment: datetime | str) -> datetime:
    """A timezone-aware UTC datetime from a datetime or an ISO 8601 string (``Z`` allowed)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def window(end: datetime | str, minutes: int, period_seconds: int = 60) -> tuple[datetime, datetime]:
    """The judged window: ``minutes`` long, ending at ``end`` floored to the period."""
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 1:
        raise ValueError(f"minutes must be a positive integer, got {minutes!r}")
    finish = utc(end)
    epoch = int(finish.timestamp())
    finish = datetime.fromtimestamp(epoch - epoch % period_seconds, tz=UTC)
    return finish - timedelta(minutes=minutes), finish


def align(results: Iterable[Mapping[str, Any]], start: datetime | str, end: datetime | str,
          period_seconds: int = 60) -> tuple[dict[str, list], dict[str, list]]:
    """Per-variant series ``{key: [value or None per period]}`` from GetMetricData results.

    Each result's ``Label`` is ``<role>|<key>`` (as ``ShadowMetricFactory.metric_data_queries``
    sets it); results of several pages with the same Id are merged. A period without a
    datapoint is None; a datapoint outside [start, end) is ignored.
    """
    begin, finish = utc(start), utc(end)
    slots = int((finish - begin).total_seconds()) // period_seconds
    if slots < 1:
        raise ValueError(f"the window must hold at least one {period_seconds}-second period, got {begin} to {finish}")
    series: dict[str, dict[str, list]] = {role: {} for role in ROLES}
    for result in results:
        label = result.get("Label", "")
        role, _, key = label.partition("|")
        if role not in series or not key:
            raise ValueError(f"result {result.get('Id')!r} has label {label!r}; expected '<production|shadow>|<key>'")
        values = series[role].setdefault(key, [None] * slots)
        for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=True):
            index = int((utc(stamp) - begin).total_seconds()) // period_seconds
            if 0 <= index < slots:
                values[index] = float(value)
    missing = sorted(set(series["production"]) ^ set(series["shadow"]))
    if missing:
        raise ValueError(f"every key needs both variants; missing a side: {missing}")
    return series["production"], series["shadow"]
