"""Fold a burst of requests into few calls: at most one call per interval, and never a request left behind."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Coalescer:
    """Calls ``action`` on its own thread soon after ``request()``; requests that come while a call runs or
    within ``interval`` after it fold into the next call. ``close()`` makes the last call a request asked for.

    The SMPP gateway uses it to ask another process to apply stored receipts: a receipt batch is committed
    every few milliseconds, and one task per batch cost the gateway (and the broker) more than the receipts.
    """

    def __init__(self, action: Callable[[], None], *, interval: float, name: str) -> None:
        self.action = action
        self.interval = interval
        self.calls = 0
        self._condition = threading.Condition()
        self._requested = False
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def request(self) -> None:
        with self._condition:
            self._requested = True
            self._condition.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after a last call for anything still requested."""
        with self._condition:
            self._closed.set()
            self._condition.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._requested and not self._closed.is_set():
                    self._condition.wait()
                if not self._requested:
                    return  # closed with nothing asked for
                self._requested = False
            try:
                self.action()
                self.calls += 1
            except Exception:  # the thread outlives one failed call; what was asked for has a fallback
                log.exception("%s failed", self._thread.name)
            # At most one call per interval: requests meanwhile wait (and fold) here. Closing cuts it short.
            self._closed.wait(self.interval)
