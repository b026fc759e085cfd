"""Interim looks: when a self-ending shadow test is judged before its end. Stdlib only.

A test in the SHADOW phase is judged on all its data so far every ``look_interval``, from the
criteria's ``min_minutes`` on, and once more at its end. Look ``k`` falls at
``test_start + k * look_interval`` (the first one no earlier than ``min_minutes`` after the start);
the last look is the test's end. A PROMOTE or REJECT at any look ends the test then; an
INCONCLUSIVE waits for the next look. The verdict's confidence sequences stay valid however many
looks there are (see ``verdict``), so looking often costs no false decisions, only Lambda time.

``schedule`` lists the looks (the plan prints it); ``next_look`` is the workflow's step before each
wait: given the time now, the next look still ahead and the window it judges. A restarted
execution (a new workflow definition keeps the test's start) therefore resumes at the next look,
without judging the past ones again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

#: A look every 10 minutes at most often (a minute of CloudWatch data is final after a few minutes).
MIN_LOOK_SECONDS = 600
#: The workflow's states around the looks (the constructs name them from here).
WAIT_STATE = "WaitForTestEnd"  # an execution given a ``test_end`` but no ``test_start`` waits there for it
LOOK_WAIT_STATE = "WaitForNextLook"  # the self-ending execution waits there for its next look
PLAN_STATE = "PlanLook"
INTERIM_CHOICE = "InterimLook?"
#: The states of a self-ending execution that change nothing: stopping it there (the test left the SHADOW phase, its
#: stack was deleted) loses nothing. Once it has decided (and reports and acts) it is left to finish.
STOPPABLE_STATES = frozenset({"Follow?", "WaitForTestEnd?", WAIT_STATE, "StartLooks", PLAN_STATE, LOOK_WAIT_STATE,
                              "LookWindow", "Setup", "GatherMetrics", "MeasureAgreement", "Judge", INTERIM_CHOICE})
#: Step Functions keeps at most 25,000 events in an execution's history; a look takes at most about 26 (plan,
#: wait, gather, agreement, judge, two choices), the test's set-up and its ending a few hundred.
MAX_LOOKS = 900


def parse_time(value: str | datetime) -> datetime:
    """An ISO-8601 time (``Z`` or an offset; a naive time is UTC) as an aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO-8601 time, got {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """A UTC time as Step Functions' Wait state takes it: ``2026-12-08T10:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Look:
    """One look: its number (1-based), when it falls, the minutes of data it judges, whether it is the last."""

    number: int
    at: datetime
    minutes: int
    final: bool

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "at": iso(self.at), "minutes": self.minutes, "final": self.final}


def schedule(test_start: str | datetime, test_end: str | datetime, look_seconds: int, min_minutes: int = 0) -> list[Look]:
    """Every look of a test, in order: every ``look_seconds`` from ``min_minutes`` on, and its end.

    :raises ValueError: for an end not after the start, or a look interval under 10 minutes.
    """
    start, end = parse_time(test_start), parse_time(test_end)
    if end <= start:
        raise ValueError(f"the test must end after it starts, got start {iso(start)} and end {iso(end)}")
    if look_seconds < MIN_LOOK_SECONDS:
        raise ValueError(f"the look interval must be at least {MIN_LOOK_SECONDS} seconds, got {look_seconds}")
    first = max(1, math.ceil(min_minutes * 60 / look_seconds))
    looks: list[Look] = []
    k = first
    while (at := start + timedelta(seconds=k * look_seconds)) < end:
        looks.append(Look(len(looks) + 1, at, int((at - start).total_seconds()) // 60, False))
        k += 1
    looks.append(Look(len(looks) + 1, end, int((end - start).total_seconds()) // 60, True))
    return looks


def look_count(duration_seconds: int, look_seconds: int, min_minutes: int = 0) -> int:
    """How many looks a test of this duration makes (the final one at its end included)."""
    start = datetime(2000, 1, 1, tzinfo=UTC)  # any start: the schedule depends only on the durations
    return len(schedule(start, start + timedelta(seconds=duration_seconds), look_seconds, min_minutes))


def next_look(test_start: str | datetime, test_end: str | datetime, look_seconds: int, now: str | datetime,
              min_minutes: int = 0) -> Look:
    """The first look at or after ``now`` (the final one once ``now`` is past the end)."""
    return _first_from(schedule(test_start, test_end, look_seconds, min_minutes), parse_time(now))


def _first_from(looks: list[Look], moment: datetime) -> Look:
    return next((look for look in looks if look.at >= moment), looks[-1])


def plan_look(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The workflow's step before each wait (a Lambda handler; pure: no AWS call).

    Event: ``test_start``, ``test_end`` (ISO times, the self-ending execution's input),
    ``look_seconds``, ``min_minutes``, ``now`` (the state's entered time) and ``after`` (the number
    of the look judged last, 0 before the first). Returns the next look after that one still ahead
    of ``now`` (the final one once none is) as ``{"number", "at", "minutes", "final", "looks",
    "test_end", "hours_left"}``: ``at`` is when to wait until and the judged window's end,
    ``minutes`` its length from the test's start, ``looks`` how many looks the whole test has,
    ``hours_left`` how long the test would still run after this look.
    """
    look_seconds = int(event["look_seconds"])
    min_minutes = int(event.get("min_minutes") or 0)
    looks = schedule(event["test_start"], event["test_end"], look_seconds, min_minutes)
    after = int(event.get("after") or 0)
    ahead = [look for look in looks if look.number > after] or looks[-1:]
    look = _first_from(ahead, parse_time(event["now"]))
    end = looks[-1].at
    return {**look.to_dict(), "looks": len(looks), "test_end": iso(end),
            "hours_left": round((end - look.at).total_seconds() / 3600, 4)}
