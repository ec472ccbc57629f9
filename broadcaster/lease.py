"""A named lease in a database row: work that should not run twice at once, whichever process asks for it.

The receipt applier is the user. A gateway asks for a provider's receipts to be applied several times a
second; two appliers on one provider would read and parse the same records, and one of them would do it for
nothing. A request that finds the lease held leaves a note (``again``) and returns at once; the holder finds
the note when it comes to release the lease, and makes another pass. So no request is lost, and one pass runs
at a time. A holder killed on this host is seen dead by the next request, which takes the lease at once (a
killed receipt applier held every provider's receipts back for ``ttl`` otherwise: the fault tests); one dead
on another host leaves it to expire after ``ttl``.

The lease saves work; it does not guard correctness. The work itself must stay safe to run twice (the
applier re-reads which records are still open inside its write transaction), because a pass that outlives
``ttl`` lets a second holder in.

``HeldLease`` is the other kind: held for the life of a process and renewed by a thread, it keeps a second
SMPP gateway of one account from binding (an SMSC counts binds per account; two gateways would split its
window and its receipts). Its holder is known by host and pid, so on the same host a holder whose process is
gone (killed -9, or a zombie) gives the lease up at once instead of after ``ttl``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.models import Lease
from broadcaster.errors import MissingRow

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(minutes=2)


def holder_name() -> str:
    """Who holds a lease: host, process and a random part (a process may run several holders)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _row(session: Session, name: str) -> Lease:
    # Created on first use; SQLite's BEGIN IMMEDIATE or PostgreSQL's row lock serialises what follows.
    table = Lease.__table__
    insert_ignoring_conflicts(session, table, [{"name": name, "again": False}], conflict=["name"])  # type: ignore[arg-type]
    lease = session.scalar(select(Lease).where(Lease.name == name).with_for_update())
    if lease is None:  # inserted just above unless it was there: only a damaged database lacks it
        raise MissingRow(f"leases row {name!r} is missing right after it was written")
    return lease


def acquire(sessions: sessionmaker[Session], name: str, holder: str, *, clock: Clock, ttl: timedelta) -> bool:
    """Take the lease if it is free, expired or held by a dead process of this host; otherwise ask its holder
    for another pass. True if taken."""
    now = clock.now()
    with sessions.begin() as session:
        lease = _row(session, name)
        held = lease.holder is not None and lease.expires_at is not None and lease.expires_at > now
        if held and not holder_gone(str(lease.holder)):
            lease.again = True
            return False
        lease.holder, lease.expires_at, lease.again = holder, now + ttl, False
        return True


def release(sessions: sessionmaker[Session], name: str, holder: str, *, clock: Clock, ttl: timedelta) -> bool:
    """Give the lease up, unless another pass was asked for meanwhile: then keep it (renewed) and return
    False, and the holder goes on. A lease that expired and passed to someone else is simply left."""
    with sessions.begin() as session:
        lease = _row(session, name)
        if lease.holder != holder:
            return True
        if lease.again:
            lease.again, lease.expires_at = False, clock.now() + ttl
            return False
        lease.holder, lease.expires_at = None, None
        return True


def run_exclusively(
    sessions: sessionmaker[Session],
    name: str,
    work: Callable[[], T],
    *,
    clock: Clock,
    ttl: timedelta = DEFAULT_TTL,
) -> list[T] | None:
    """Run ``work`` under the lease ``name``, once plus once per request that came while it ran.

    Returns the result of each pass, or None when another holder has the lease (it was asked to go on)."""
    holder = holder_name()
    if not acquire(sessions, name, holder, clock=clock, ttl=ttl):
        return None
    results: list[T] = []
    try:
        while True:
            results.append(work())
            if release(sessions, name, holder, clock=clock, ttl=ttl):
                return results
    except BaseException:
        _give_up(sessions, name, holder)
        raise


def _give_up(sessions: sessionmaker[Session], name: str, holder: str) -> None:
    """After a failed pass: free the lease at once, so the next request does not wait for it to expire."""
    with sessions.begin() as session:
        lease = _row(session, name)
        if lease.holder == holder:
            lease.holder, lease.expires_at = None, None


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host and has not died (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                state = handle.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return True
        return state not in ("Z", "X")
    return True


def holder_gone(holder: str) -> bool:
    """Whether a holder (``holder_name()``) is a process of this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isascii() and pid.isdigit() and not process_alive(int(pid))


def take(
    sessions: sessionmaker[Session], name: str, holder: str, *, clock: Clock, ttl: timedelta
) -> str | None:
    """Take or renew a lease held for a process's life. None when ``holder`` has it now, else who holds it.

    Unlike ``acquire`` it leaves no note for the holder: the one who waits asks again."""
    now = clock.now()
    with sessions.begin() as session:
        lease = _row(session, name)
        current = lease.holder
        alive = current is not None and lease.expires_at is not None and lease.expires_at > now
        if alive and current != holder and not holder_gone(str(current)):
            return str(current)
        lease.holder, lease.expires_at, lease.again = holder, now + ttl, False
        return None


class HeldLease:
    """A named lease held by this process until ``release``, renewed every ``ttl / 3`` by a thread.

    ``on_lost`` is called (from that thread) when a renewal finds another holder: the database was out of
    reach for longer than ``ttl`` and another process took over; the caller must stop what the lease guards.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        name: str,
        *,
        clock: Clock,
        ttl: timedelta,
        on_lost: Callable[[str], None],
    ) -> None:
        self.sessions, self.name, self.clock, self.ttl = sessions, name, clock, ttl
        self.holder = holder_name()
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_take(self) -> str | None:
        """Take the lease if free; None when taken, else who holds it. Starts the renewals once taken."""
        other = take(self.sessions, self.name, self.holder, clock=self.clock, ttl=self.ttl)
        if other is None and self._thread is None:
            self._thread = threading.Thread(target=self._renew, name=f"lease-{self.name}", daemon=True)
            self._thread.start()
        return other

    @property
    def held(self) -> bool:
        return self._thread is not None and not self._stop.is_set()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 3):
            try:
                other = take(self.sessions, self.name, self.holder, clock=self.clock, ttl=self.ttl)
            except (
                SQLAlchemyError
            ):  # a busy or unreachable database: try again; the lease outlives a few misses
                log.warning("lease %s: renewal failed", self.name, exc_info=True)
                continue
            if other is not None:
                self._stop.set()
                self.on_lost(other)
                return

    def release(self) -> None:
        """Stop renewing and free the lease (if still ours)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(5.0)
        self._thread = None
        _give_up(self.sessions, self.name, self.holder)
