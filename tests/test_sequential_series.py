"""series.periods / with_period / align_periods: the resolution CloudWatch still keeps for each part of a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shadow_runtime import series

NOW = datetime(2026, 12, 1, 12, 0, 7, tzinfo=UTC)


def test_a_recent_window_is_one_part_in_minutes():
    start = NOW - timedelta(days=14)
    assert series.periods(start, NOW, NOW) == [(start, NOW, 60)]


def test_a_window_older_than_15_days_is_split_at_a_5_minute_boundary():
    start, end = datetime(2026, 11, 1, 12, 3, tzinfo=UTC), datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    cutoff = datetime(2026, 11, 16, 13, 5, tzinfo=UTC)  # NOW - 15 days + 1 hour, up to 5 minutes
    assert series.periods(start, end, NOW) == [(datetime(2026, 11, 1, 12, 0, tzinfo=UTC), cutoff, 300),
                                              (cutoff, end, 60)]


def test_a_window_wholly_older_than_15_days_is_asked_in_5_minute_periods():
    start, end = datetime(2026, 10, 1, 0, 2, tzinfo=UTC), datetime(2026, 10, 2, 0, 4, tzinfo=UTC)
    assert series.periods(start, end, NOW) == [(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC), 300)]


def test_a_window_beyond_63_days_is_refused():
    with pytest.raises(ValueError, match=r"more than 63 days before"):
        series.periods(NOW - timedelta(days=64), NOW, NOW)


def test_with_period_sets_every_metric_stat_period_and_leaves_the_rest():
    queries = [{"Id": "a", "Label": "production|Invocations", "MetricStat": {"Metric": {}, "Period": 60, "Stat": "Sum"}},
               {"Id": "e", "Expression": "a * 2", "Period": 60}]
    changed = series.with_period(queries, 300)
    assert changed[0]["MetricStat"] == {"Metric": {}, "Period": 300, "Stat": "Sum"}
    assert changed[1] == {"Id": "e", "Expression": "a * 2", "Period": 300}
    assert queries[0]["MetricStat"]["Period"] == 60  # the caller's queries are not changed


def test_align_periods_joins_parts_and_says_each_slots_minutes():
    start, cutoff, end = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, 0, 15, tzinfo=UTC),
                          datetime(2026, 11, 1, 0, 18, tzinfo=UTC))
    old = [{"Label": "production|Invocations", "Timestamps": [start, start + timedelta(minutes=10)], "Values": [50, 70]},
           {"Label": "shadow|Invocations", "Timestamps": [start], "Values": [25]}]
    recent = [{"Label": f"{role}|{key}", "Timestamps": [cutoff + timedelta(minutes=2)], "Values": [9]}
              for role in ("production", "shadow") for key in ("Invocations", "ModelLatency:p99")]
    production, shadow, slots = series.align_periods([(old, start, cutoff, 300), (recent, cutoff, end, 60)])
    assert slots == [5, 5, 5, 1, 1, 1]
    assert production["Invocations"] == [50.0, None, 70.0, None, None, 9.0]
    assert shadow["Invocations"] == [25.0, None, None, None, None, 9.0]
    assert production["ModelLatency:p99"] == [None, None, None, None, None, 9.0]  # no old result: None
