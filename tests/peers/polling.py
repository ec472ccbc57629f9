"""Wait for a condition that another thread or process makes true (a receipt stored, a run finished).

Test files must not sleep to synchronise; this helper polls a predicate with a deadline instead, so a test
waits exactly as long as the condition takes and fails with a clear message when it never comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 15.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Return the first truthy value of ``predicate()``; raise ``TimeoutError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.1f} s (last value: {value!r})")
        time.sleep(interval)
