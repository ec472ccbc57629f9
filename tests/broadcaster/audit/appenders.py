"""The child side of the concurrency test: one OS process appending audit entries in many small
transactions, started by ``multiprocessing`` (spawn) and released together with the others by a barrier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from broadcaster import audit
from broadcaster.clock import SystemClock
from broadcaster.context import AppContext


def append(config: str, worker: int, count: int, barrier: Any) -> None:
    """``count`` entries, one or two per transaction, subject ids ``<worker>:<n>`` in order."""
    context = AppContext.load(Path(config), clock=SystemClock())
    try:
        written = 0
        barrier.wait()
        while written < count:
            with context.sessions.begin() as session:
                for _ in range(min(1 + written % 2, count - written)):
                    audit.record(
                        session,
                        actor=f"p{worker}",
                        action="test.append",
                        subject_type="test",
                        subject_id=f"{worker}:{written}",
                        at=context.clock.now(),
                    )
                    written += 1
    finally:
        context.close()
