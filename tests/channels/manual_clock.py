"""An adapter's clock (``channels/clock.py``) that moves only when the test says so: token expiry and renewal
are driven by it, never by waiting."""

from __future__ import annotations


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
