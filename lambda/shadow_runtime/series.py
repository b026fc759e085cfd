"""From GetMetricData results to the aligned per-minute series the verdict reads. Stdlib only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .looks import parse_time as utc  # the runtime's one reading of a time: aware UTC from a datetime or ISO 8601

ROLES = ("production", "shadow")


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


#: CloudWatch keeps 1-minute points for 15 days and 5-minute points for 63 days (GetMetricData
#: returns nothing for a 60-second period that starts earlier than 15 days ago).
FINE_RETENTION = timedelta(days=15)
COARSE_RETENTION = timedelta(days=63)
COARSE_PERIOD = 300
#: Data this close to the 15-day edge is asked in 5-minute periods too, so that a point rolled up
#: while the request runs is not lost.
RETENTION_MARGIN = timedelta(hours=1)


def _floor(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _ceil(moment: datetime, seconds: int) -> datetime:
    floored = _floor(moment, seconds)
    return floored if floored == moment else floored + timedelta(seconds=seconds)


def periods(start: datetime | str, end: datetime | str, now: datetime | str,
            period_seconds: int = 60) -> list[tuple[datetime, datetime, int]]:
    """The GetMetricData requests ``(start, end, period)`` that cover the window at the resolution
    CloudWatch still keeps at ``now``: the part older than 15 days (less a 1-hour margin) in
    5-minute periods from the window's start floored to 5 minutes (as CloudWatch rounds such a
    start), the rest in ``period_seconds`` periods. A window wholly older than that is asked in
    5-minute periods and ends at its end floored to 5 minutes.

    :raises ValueError: when the window reaches back beyond the 63 days CloudWatch keeps 5-minute
        points for, or holds no period.
    """
    begin, finish, clock = utc(start), utc(end), utc(now)
    if finish <= begin:
        raise ValueError(f"the window must end after it starts, got {begin} to {finish}")
    if begin < clock - COARSE_RETENTION:
        raise ValueError(f"the window starts at {begin}, more than 63 days before {clock}: CloudWatch keeps "
                         "no 1- or 5-minute points that old")
    cutoff = clock - FINE_RETENTION + RETENTION_MARGIN
    if period_seconds % COARSE_PERIOD == 0 or begin >= cutoff:
        return [(begin, finish, period_seconds)]
    cutoff = _ceil(cutoff, COARSE_PERIOD)
    coarse_start = _floor(begin, COARSE_PERIOD)
    if cutoff >= finish:
        coarse_end = _floor(finish, COARSE_PERIOD)
        if coarse_end <= coarse_start:
            raise ValueError(f"the window {begin} to {finish} holds no whole 5-minute period")
        return [(coarse_start, coarse_end, COARSE_PERIOD)]
    return [(coarse_start, cutoff, COARSE_PERIOD), (cutoff, finish, period_seconds)]


def with_period(queries: Iterable[Mapping[str, Any]], period_seconds: int) -> list[dict[str, Any]]:
    """MetricDataQueries with every MetricStat's (and expression's) Period set to ``period_seconds``."""
    changed = []
    for query in queries:
        query = dict(query)
        if "MetricStat" in query:
            query["MetricStat"] = {**query["MetricStat"], "Period": period_seconds}
        elif "Period" in query:
            query["Period"] = period_seconds
        changed.append(query)
    return changed


def align_periods(parts: Iterable[tuple[Iterable[Mapping[str, Any]], datetime, datetime, int]]
                  ) -> tuple[dict[str, list], dict[str, list], list[int]]:
    """Series of consecutive parts at different periods, joined: ``(production, shadow,
    slot_minutes)``, ``slot_minutes`` giving each slot's length (5 for a 5-minute slot) as
    ``verdict.compare`` takes it. ``parts``: ``(results, start, end, period_seconds)`` in time order;
    a key a part has no result for is None in its slots."""
    joined: tuple[dict[str, list], dict[str, list]] = ({}, {})
    slot_minutes: list[int] = []
    for results, start, end, period in parts:
        if period % 60:
            raise ValueError(f"periods must be whole minutes, got {period} seconds")
        aligned = align(results, start, end, period)
        slots = int((utc(end) - utc(start)).total_seconds()) // period
        for target, source in zip(joined, aligned, strict=True):
            for key in set(target) | set(source):
                target.setdefault(key, [None] * len(slot_minutes)).extend(source.get(key, [None] * slots))
        slot_minutes += [period // 60] * slots
    return joined[0], joined[1], slot_minutes
