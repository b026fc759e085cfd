"""The emulator's one clock: this machine's UTC time plus an offset, running at a rate the demo or a test sets.

Every double that tells time reads the same ``EmulatorClock``: the runtime double stamps metrics
and capture records with it (a replay runs behind: a negative offset), and Step Functions' Wait
states end by it (``WaitStateDouble``: moving it forward ends a wait without sleeping; a rate above
1 makes every wait that many times shorter). ``POST /_shadow_emulator/clock {"offset_seconds": N,
"rate": R}`` sets the offset and the rate of the server's clock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class EmulatorClock:
    """UTC now plus ``offset`` (a ``timedelta``, 0 by default), running ``rate`` times as fast as this
    machine's clock (1 by default); safe to set from any thread.

    With a rate R, the offset grows by R - 1 seconds every second: setting the offset or the rate
    starts from the emulated time at that moment.
    """

    def __init__(self, offset: timedelta = timedelta(0), rate: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._offset = offset
        self._rate = self._checked_rate(rate)
        self._since = datetime.now(UTC)

    @staticmethod
    def _checked_rate(rate: float) -> float:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 1 <= rate <= 10_000:
            raise ValueError(f"the clock's rate is a number from 1 to 10000, got {rate!r}")
        return float(rate)

    def _offset_at(self, real: datetime) -> timedelta:
        return self._offset + (real - self._since) * (self._rate - 1)

    @property
    def offset(self) -> timedelta:
        """How far the emulated time is ahead of this machine's (behind: negative)."""
        with self._lock:
            return self._offset_at(datetime.now(UTC))

    @offset.setter
    def offset(self, value: timedelta) -> None:
        if not isinstance(value, timedelta):
            raise TypeError(f"the clock's offset is a timedelta, got {value!r}")
        with self._lock:
            self._offset, self._since = value, datetime.now(UTC)

    @property
    def rate(self) -> float:
        """Emulated seconds per real second (1: the clock keeps this machine's pace)."""
        with self._lock:
            return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        value = self._checked_rate(value)
        with self._lock:
            real = datetime.now(UTC)
            self._offset, self._since, self._rate = self._offset_at(real), real, value

    def set(self, offset: timedelta, rate: float = 1.0) -> None:
        """Set the offset and the rate at once (the control route's ``POST clock``)."""
        if not isinstance(offset, timedelta):
            raise TypeError(f"the clock's offset is a timedelta, got {offset!r}")
        rate = self._checked_rate(rate)
        with self._lock:
            self._offset, self._since, self._rate = offset, datetime.now(UTC), rate

    def now(self) -> datetime:
        """The emulated time: timezone-aware UTC."""
        with self._lock:
            real = datetime.now(UTC)
            return real + self._offset_at(real)
