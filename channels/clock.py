"""Interval time as a dependency of the adapters: deadlines and back-offs read ``monotonic()`` and deliberate
pauses call ``sleep()`` on a ``Clock`` they are given, so tests move time instead of waiting for it.

Blocking waits on queues and events with a timeout stay real waits: they end early when something arrives."""

from __future__ import annotations

import time
from typing import Final, Protocol


class Clock(Protocol):
    """Where an adapter's intervals come from."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Pause the calling thread for ``seconds``."""
        ...


class SystemClock:
    """The machine's monotonic clock and a real sleep."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK: Final = SystemClock()
