"""Planning's writes on a thread of their own: while one page of messages is inserted and committed, the next
is screened and composed.

The database drivers let other Python threads run while the database works (sqlite3 and psycopg release the
interpreter lock around each statement and commit), so on two cores the planner's Python work and the
database's insert of the page before overlap (docs/architecture.md, "Planning at scale"). One page waits at
most, so memory stays at about three pages.

A page handed over is not visible to the planner's reads until it is committed; the planner asks
``in_flight()`` for the idempotency keys of those pages (taken before its read transaction starts) so that a
person met again on the next page is still found planned. A failed write stops the planning with the writer's
exception; what was committed stands, and the run resumes at its checkpoint (the last page committed). A
page handed over is whole, and is written even if the planner fails after handing it over.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class PlannedPage:
    rows: list[dict[str, Any]]
    carriers: dict[int, str | None]  # contact id → allocated carrier, for the SMS routes
    to: int  # the checkpoint the page moves the run to: its last contact id
    now: datetime

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(row["idempotency_key"] for row in self.rows)


class PageWriter:
    """``write(page)`` on a thread, pages in order; it returns False when the run stopped being planned
    (cancelled), and the writer then takes no more (``stopped``)."""

    def __init__(self, write: Callable[[PlannedPage], bool]) -> None:
        self._write = write
        self._queue: queue.Queue[PlannedPage | None] = queue.Queue(maxsize=1)
        self._unwritten: list[tuple[int, frozenset[str]]] = []  # (page number, keys), planner thread only
        self._handed = 0
        self._written = 0  # pages committed, counted by the writer thread
        self._error: BaseException | None = None
        self.stopped = False
        self._thread = threading.Thread(target=self._run, name="plan-page-writer", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Pages handed over are whole: written even when the planner itself failed after them.
        self._queue.put(None)
        self._thread.join()
        if error is None:
            self._raise_if_failed()

    def put(self, page: PlannedPage) -> None:
        """Hand a page over; waits while the writer still has one waiting."""
        self._raise_if_failed()
        self._handed += 1
        self._unwritten.append((self._handed, page.keys))
        self._queue.put(page)

    def in_flight(self) -> frozenset[str]:
        """The idempotency keys of the pages handed over and not yet committed. Ask before starting the read
        transaction that looks for planned keys: a page committed after that stays in this set."""
        written = self._written
        self._unwritten = [(number, keys) for number, keys in self._unwritten if number > written]
        return frozenset().union(*(keys for _, keys in self._unwritten))

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (page := self._queue.get()) is not None:
            if self._error is not None or self.stopped:
                continue  # drain to the end, so that put() never waits on a writer that is gone
            try:
                if not self._write(page):
                    self.stopped = True
                    continue
            except BaseException as exc:  # re-raised in the planner's thread
                self._error = exc
                continue
            self._written += 1
