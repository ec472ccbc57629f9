"""What the dispatcher measures in the process that sends: how long a window takes from handing it to the
adapter to its results, and how long a sender waits for its provider's rate-limit bucket.

Unlike the figures of ``broadcaster.observe.metrics`` these live in a process's memory, and a Celery worker
is several processes; prometheus_client's multiprocess mode collects them: with ``PROMETHEUS_MULTIPROC_DIR``
set for the workers, each process writes its values to a file there and ``broadcaster metrics`` on that host
adds them up (docs/supervision.md, "Process metrics"). Without it they stay in each process, unread."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROC_ENV):  # values are written there from the first observation on
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

SEND_WINDOW_SECONDS = Histogram(
    "broadcaster_send_window_seconds",
    "From handing a window of messages to the adapter to its results",
    ["channel", "provider"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
BUCKET_WAIT_SECONDS = Histogram(
    "broadcaster_bucket_wait_seconds",
    "How long a sender waited for tokens of its provider's rate-limit bucket",
    ["provider"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PROCESS_METRIC_NAMES = ("broadcaster_send_window_seconds", "broadcaster_bucket_wait_seconds")


class TimedPacer:
    """A pacer whose waits for tokens are observed in ``broadcaster_bucket_wait_seconds``; anything else the
    wrapped pacer offers (``throttled``, which slows a Redis bucket) is passed through."""

    def __init__(self, provider: str, pacer: Callable[[int], int]) -> None:
        self._pacer = pacer
        self._waited = BUCKET_WAIT_SECONDS.labels(provider)

    def __call__(self, wanted: int) -> int:
        started = time.monotonic()
        try:
            return self._pacer(wanted)
        finally:
            self._waited.observe(time.monotonic() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pacer, name)


def timed_pacer(provider: str, pacer: Callable[[int], int]) -> TimedPacer:
    return TimedPacer(provider, pacer)
