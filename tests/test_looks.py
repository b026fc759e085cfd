"""Interim looks (issue 14): the schedule of a self-ending test's looks and the step that picks the next one."""

from datetime import UTC, datetime, timedelta

import pytest
from shadow_runtime import looks

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def test_looks_fall_every_interval_from_min_minutes_on_and_at_the_end():
    plan = looks.schedule(START, at(180), 600, min_minutes=30)
    assert [look.minutes for look in plan] == list(range(30, 181, 10))
    assert [look.number for look in plan] == list(range(1, 17))
    assert [look.final for look in plan] == [False] * 15 + [True]
    assert plan[-1].at == at(180)
    assert looks.look_count(180 * 60, 600, 30) == len(plan)


@pytest.mark.parametrize(("duration_minutes", "interval_minutes", "min_minutes"), [
    (185, 60, 10), (180, 60, 90), (60, 60, 10), (30, 60, 10), (7 * 24 * 60, 60, 10), (45, 10, 100), (601, 10, 0),
])
def test_the_count_matches_the_schedule(duration_minutes, interval_minutes, min_minutes):
    plan = looks.schedule(START, at(duration_minutes), interval_minutes * 60, min_minutes)
    assert looks.look_count(duration_minutes * 60, interval_minutes * 60, min_minutes) == len(plan)
    assert plan[-1].final and plan[-1].at == at(duration_minutes) and not any(look.final for look in plan[:-1])
    assert all(b.at > a.at for a, b in zip(plan, plan[1:], strict=False))
    assert all(look.minutes >= min(min_minutes, duration_minutes) for look in plan)


def test_an_end_between_two_intervals_is_the_last_look():
    plan = looks.schedule(START, at(185), 3600, min_minutes=10)
    assert [look.minutes for look in plan] == [60, 120, 180, 185]


def test_the_next_look_is_the_first_one_still_ahead():
    assert looks.next_look(START, at(180), 600, now=START, min_minutes=30).minutes == 30
    assert looks.next_look(START, at(180), 600, now=at(30), min_minutes=30).minutes == 30  # due now: judged now
    assert looks.next_look(START, at(180), 600, now=at(31), min_minutes=30).minutes == 40
    late = looks.next_look(START, at(180), 600, now=at(500), min_minutes=30)
    assert late.final and late.minutes == 180  # past the end: the final look, at once


def test_the_workflow_step_returns_the_window_and_the_wait():
    result = looks.plan_look({"test_start": "2026-12-01T09:00:00Z", "test_end": "2026-12-01T12:00:00Z",
                              "look_seconds": "3600", "min_minutes": 10, "now": "2026-12-01T10:20:31.123Z", "after": 0})
    assert result == {"number": 2, "at": "2026-12-01T11:00:00Z", "minutes": 120, "final": False, "looks": 3,
                      "test_end": "2026-12-01T12:00:00Z", "hours_left": 1.0}


def test_a_look_judged_early_is_not_judged_again():
    # The wait ended by another clock (an emulator's) before the look's time: the next step goes on to the next look.
    event = {"test_start": "2026-12-01T09:00:00Z", "test_end": "2026-12-01T12:00:00Z", "look_seconds": 3600,
             "min_minutes": 10, "now": "2026-12-01T09:05:00Z"}
    assert [looks.plan_look({**event, "after": after})["number"] for after in (0, 1, 2)] == [1, 2, 3]
    assert looks.plan_look({**event, "after": 3})["final"]  # nothing after the last one: the last one


@pytest.mark.parametrize(("start", "end", "seconds", "message"), [
    (START, START, 600, "must end after it starts"),
    (START, at(60), 599, "at least 600 seconds, got 599"),
    ("yesterday", at(60), 600, "ISO-8601 time, got 'yesterday'"),
])
def test_bad_schedules_are_refused(start, end, seconds, message):
    with pytest.raises(ValueError, match=message):
        looks.schedule(start, end, seconds)
