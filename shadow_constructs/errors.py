"""The one exception type for invalid configuration, and the collector behind it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk


class ConfigError(ValueError):
    """An invalid shadow-test configuration, found before anything reaches AWS.

    ``problems`` lists every problem found in one construct or value, each naming the
    parameter as spelt in the Python API and showing the value given.
    """

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"{where}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{where}: {len(self.problems)} problems:\n{lines}"
        super().__init__(message)


def shown(value: Any) -> str:
    """How a given value appears in an error message."""
    if isinstance(value, cdk.Duration):
        return value.to_human_string() if not cdk.Token.is_unresolved(value) else "a token"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (bool, int, float)) or value is None:
        return repr(value)
    return f"{type(value).__name__}"


def human_duration(seconds: float) -> str:
    """``seconds`` in the largest unit that states it exactly: ``2592000`` -> "30 days", ``5400`` -> "90 minutes"."""
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds) if float(seconds).is_integer() else seconds
    return f"{count} second{'s' if count != 1 else ''}"


class Problems:
    """Collects configuration problems so that one ConfigError can report them all."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.found: list[str] = []

    def add(self, message: str) -> None:
        self.found.append(message)

    def extend(self, messages: Iterable[str]) -> None:
        self.found.extend(messages)

    def raise_if_any(self) -> None:
        if self.found:
            raise ConfigError(self.where, self.found)

    # Checks. Each returns True when the value passed, so callers can chain dependent checks.

    def check_type(self, name: str, value: Any, expected: type | tuple[type, ...], what: str) -> bool:
        # bool is an int in Python; nobody means True instances.
        if isinstance(value, bool) and bool not in (expected if isinstance(expected, tuple) else (expected,)):
            self.add(f"{name} must be {what}, got {shown(value)}")
            return False
        if not isinstance(value, expected):
            self.add(f"{name} must be {what}, got {shown(value)} ({type(value).__name__})")
            return False
        return True

    def check_int_range(self, name: str, value: Any, low: int, high: int | None = None) -> bool:
        if not self.check_type(name, value, int, "an integer"):
            return False
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.add(f"{name} must be {bound}, got {value}")
            return False
        return True

    def check_number_range(self, name: str, value: Any, low: float, high: float) -> bool:
        if not self.check_type(name, value, (int, float), "a number"):
            return False
        if not low <= value <= high:
            self.add(f"{name} must be between {low:g} and {high:g}, got {value:g}")
            return False
        return True

    def check_seconds(self, name: str, value: Any, low: int, high: int) -> bool:
        """A Duration whose whole seconds lie in [low, high]; tokens pass unchecked."""
        if not self.check_type(name, value, cdk.Duration, "an aws_cdk.Duration"):
            return False
        if cdk.Token.is_unresolved(value):
            return True
        seconds = value.to_seconds()
        if not low <= seconds <= high:
            self.add(f"{name} must be between {human_duration(low)} and {human_duration(high)}, "
                     f"got {human_duration(seconds)}")
            return False
        return True

    def check_pattern(self, name: str, value: Any, pattern: str, rule: str) -> bool:
        if not self.check_type(name, value, str, "a string"):
            return False
        if cdk.Token.is_unresolved(value):
            return True
        if not re.fullmatch(pattern, value):
            self.add(f"{name} {rule}, got {value!r}")
            return False
        return True


def check_removal_policy(problems: Problems, value: Any, default: cdk.RemovalPolicy,
                         name: str = "removal_policy") -> cdk.RemovalPolicy:
    """``value`` checked to be a ``cdk.RemovalPolicy`` (``default`` when None)."""
    if value is None:
        return default
    if not isinstance(value, cdk.RemovalPolicy):
        problems.add(f"{name} must be an aws_cdk.RemovalPolicy (RETAIN, DESTROY, SNAPSHOT, ...), got {shown(value)}")
        return default
    return value
