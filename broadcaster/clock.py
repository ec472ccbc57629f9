"""Time as a dependency: services take a ``Clock`` (the calendar, monotonic time and sleeping) so tests move
time instead of sleeping. It extends the adapters' interval clock (``channels.clock``), so one clock serves
the engine and the adapters it builds."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from channels import clock as intervals

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock(intervals.Clock, Protocol):
    def now(self) -> datetime: ...


class SystemClock(intervals.SystemClock):
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A calendar that only moves when told to, and a sleep that moves it instead of waiting.

    Its monotonic time runs with the machine's and jumps with every ``advance`` and ``sleep``: real peers in a
    test (sandbox servers) still time out while the calendar stands still, and a test that jumps further than
    any real wait makes deadlines pass at once."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._jumped = 0.0  # seconds added to the machine's monotonic time
        self._lock = threading.Lock()  # the engine's threads sleep on one clock
        self.slept: list[float] = []  # every sleep asked for, in order

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return time.monotonic() + self._jumped

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
        self.advance(timedelta(seconds=max(0.0, seconds)))

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta
            self._jumped += max(0.0, delta.total_seconds())

    def set(self, moment: datetime) -> None:
        with self._lock:
            moment = moment.astimezone(UTC)
            self._jumped += max(0.0, (moment - self._now).total_seconds())
            self._now = moment


def utcnow() -> datetime:
    return datetime.now(UTC)


def local(moment: datetime) -> datetime:
    """Show a stored UTC moment in Da Nang time."""
    return moment.astimezone(LOCAL_TZ)
