"""One SQLite write transaction at a time per process and engine, queued on a lock instead of on SQLite's busy
handler.

SQLite lets one writer in at a time (docs/architecture.md §3: ``BEGIN IMMEDIATE``, ``busy_timeout``). A writer
that finds the lock taken sleeps in SQLite's busy handler, whose naps grow to 100 ms whatever the holder does:
the SMS gateway's threads (hand-over marks, early results, raw receipts) each slept through gaps in which the
lock was free. Threads of one process now wait for their turn on a Python lock, which the committing thread
hands on at once; only the thread whose turn it is still meets other processes in the busy handler. What is
written, and in which transactions, is unchanged.
"""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["TURN_TIMEOUT_SECONDS", "TurnTakingConnection", "WriteTurns"]

# Past this a writer stops waiting for its turn and queues in SQLite's busy handler as before (its own
# busy_timeout still applies there): a turn held this long is a stuck transaction, not a queue.
TURN_TIMEOUT_SECONDS = 30.0


class WriteTurns:
    """The write turn of one engine's connections in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    def take(self) -> bool:
        """Wait for the turn; False when not taken: this thread already has it through another connection
        (SQLite decides that one, as before), or the wait timed out."""
        me = threading.get_ident()
        if self._owner == me:
            return False
        if not self._lock.acquire(timeout=TURN_TIMEOUT_SECONDS):
            return False
        self._owner = me
        return True

    def give_back(self) -> None:
        self._owner = None
        self._lock.release()


class TurnTakingConnection(sqlite3.Connection):
    """A pysqlite connection that gives its write turn back when its transaction ends (commit, rollback,
    close), whether or not that succeeded."""

    turns: WriteTurns | None = None
    holds_turn = False

    def take_turn(self) -> None:
        if self.turns is not None and not self.holds_turn:
            self.holds_turn = self.turns.take()

    def give_back_turn(self) -> None:
        if self.holds_turn and self.turns is not None:
            self.holds_turn = False
            self.turns.give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_back_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_back_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_back_turn()
