"""A test double for the CloudWatch gaps shadow tests hit in moto: percentiles, and speed.

moto 5.2's GetMetricData answers Sum, Average, Minimum, Maximum and SampleCount, and fails on
``pNN`` statistics (ModelLatency:p99). While installed, ``CloudWatchDouble`` computes them from
the raw values put with PutMetricData: linear interpolation between closest ranks (CloudWatch
itself approximates percentiles; on a few hundred values a minute the two agree to the nearest
sample). Values put only as StatisticValues carry no samples; their pNN reads as their Maximum.

It also answers GetMetricData requests made only of MetricStat queries from an index of the
datapoints (moto rescans every datapoint for every query and period: seconds per request), and
matches the namespace too (moto ignores it when dimensions are given). Requests with metric
math go to moto unchanged. The index (datapoints by namespace, name and dimensions) is kept per
backend and extended by the datapoints put since the last request: a workflow look asks every
few seconds over tens of thousands of datapoints.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import defaultdict
from datetime import timedelta
from typing import Any

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import CloudWatchBackend, Statistics

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100)")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class CloudWatchDouble:
    """``with CloudWatchDouble():`` inside ``mock_aws`` makes pNN statistics work."""

    def __init__(self) -> None:
        self._original = None
        self._original_get_metric_data = None

    def install(self) -> CloudWatchDouble:
        self._original_get_metric_data = original_get = CloudWatchBackend.get_metric_data

        def get_metric_data(backend: CloudWatchBackend, queries: list[dict[str, Any]], start_time, end_time,
                            scan_by: str = "TimestampAscending") -> list[dict[str, Any]]:
            if any("MetricStat" not in q for q in queries):
                return original_get(backend, queries, start_time, end_time, scan_by)
            return _indexed_metric_data(backend, queries, start_time, end_time, scan_by)

        CloudWatchBackend.get_metric_data = get_metric_data
        original = self._original = Statistics.get_statistics_for_type

        def get_statistics_for_type(stats: Statistics, stat: str):
            match = _PERCENTILE.fullmatch(stat)
            if match is None:
                return original(stats, stat)
            values = stats.metric_single_values_list
            if values:
                return percentile(values, float(match.group(1)))
            return max(d.max for d in stats.metric_data if getattr(d, "max", None) is not None)

        Statistics.get_statistics_for_type = get_statistics_for_type
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            Statistics.get_statistics_for_type = self._original
            CloudWatchBackend.get_metric_data = self._original_get_metric_data
            self._original = self._original_get_metric_data = None

    def __enter__(self) -> CloudWatchDouble:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


def _dimensions_key(dimensions) -> tuple:
    return tuple(sorted((d["Name"], d["Value"]) if isinstance(d, dict) else (d.name, d.value) for d in dimensions))


def _metric_key(datum) -> tuple:
    return datum.namespace, datum.name, _dimensions_key(datum.dimensions)


class _Index:
    """The datapoints of one backend's ``metric_data`` (a list moto only appends to) by (namespace, name,
    dimensions), as far as ``seen``."""

    def __init__(self, data: list) -> None:
        self.data, self.seen = data, 0
        self.by_metric: dict[tuple, list] = defaultdict(list)

    def update(self) -> None:
        for datum in self.data[self.seen:]:
            self.by_metric[_metric_key(datum)].append(datum)
        self.seen = len(self.data)


_INDEXES: weakref.WeakKeyDictionary[CloudWatchBackend, _Index] = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


def _index_of(backend: CloudWatchBackend) -> dict[tuple, list]:
    """Every datapoint of ``backend`` by (namespace, name, dimensions): its put datapoints from the kept index (made
    again if moto replaced or shortened the list), the ones moto derives from other services (``aws_metric_data``,
    computed on each call) added afresh."""
    with _INDEX_LOCK:
        index = _INDEXES.get(backend)
        if index is None or index.data is not backend.metric_data or len(backend.metric_data) < index.seen:
            index = _INDEXES[backend] = _Index(backend.metric_data)
        index.update()
        derived = backend.aws_metric_data
        if not derived:
            # Read outside the lock: a list another request appends to meanwhile is still safe to walk.
            return index.by_metric
        merged: dict[tuple, list] = defaultdict(list, {key: list(data) for key, data in index.by_metric.items()})
    for datum in derived:
        merged[_metric_key(datum)].append(datum)
    return merged


def _indexed_metric_data(backend: CloudWatchBackend, queries, start_time, end_time, scan_by) -> list[dict[str, Any]]:
    start, end = start_time.replace(microsecond=0), end_time.replace(microsecond=0)
    if start >= end:
        raise ValidationError("The parameter EndTime must be greater than StartTime.")
    index = _index_of(backend)
    results = []
    for query in queries:
        metric_stat = query["MetricStat"]
        metric, stat, period = metric_stat["Metric"], metric_stat["Stat"], int(metric_stat["Period"])
        unit = metric_stat.get("Unit")
        buckets: dict[int, list] = defaultdict(list)
        for datum in index.get((metric["Namespace"], metric["MetricName"], _dimensions_key(metric.get("Dimensions", []))), []):
            if start <= datum.timestamp < end and (unit is None or datum.unit == unit):
                buckets[int((datum.timestamp - start).total_seconds()) // period].append(datum)
        timestamps, values = [], []
        for slot in sorted(buckets):
            stats = Statistics([stat], start + timedelta(seconds=slot * period))
            stats.metric_data = buckets[slot]
            timestamps.append(stats.timestamp)
            values.append(stats.get_statistics_for_type(stat))
        if scan_by == "TimestampDescending":
            timestamps.reverse()
            values.reverse()
        if query.get("ReturnData", True):
            results.append({"id": query["Id"], "label": query.get("Label") or f"{metric['MetricName']} {stat}",
                            "values": values, "timestamps": timestamps, "status_code": "Complete"})
    return results
