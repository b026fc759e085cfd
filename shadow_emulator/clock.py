"""The emulator's one clock: this machine's UTC time plus an offset the demo or a test sets.

Every double that tells time reads the same ``EmulatorClock``: the runtime double stamps metrics
and capture records with it (a replay runs behind: a negative offset), and Step Functions' Wait
states end by it (``WaitStateDouble``: moving it forward ends a wait without sleeping).
``POST /_shadow_emulator/clock {"offset_seconds": N}`` sets the offset of the server's clock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class EmulatorClock:
    """UTC now plus ``offset`` (a ``timedelta``, 0 by default); safe to set from any thread."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._lock = threading.Lock()
        self._offset = offset

    @property
    def offset(self) -> timedelta:
        with self._lock:
            return self._offset

    @offset.setter
    def offset(self, value: timedelta) -> None:
        if not isinstance(value, timedelta):
            raise TypeError(f"the clock's offset is a timedelta, got {value!r}")
        with self._lock:
            self._offset = value

    def now(self) -> datetime:
        """The emulated time: timezone-aware UTC."""
        return datetime.now(UTC) + self.offset
