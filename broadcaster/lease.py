"""A named lease in a database row: work that should not run twice at once, whichever process asks for it.

The receipt applier is the user. A gateway asks for a provider's receipts to be applied several times a
second; two appliers on one provider would read and parse the same records, and one of them would do it for
nothing. A request that finds the lease held leaves a note (``again``) and returns at once; the holder finds
the note when it comes to release the lease, and makes another pass. So no request is lost, and one pass runs
at a time. A holder that dies leaves the lease to expire after ``ttl``.

The lease saves work; it does not guard correctness. The work itself must stay safe to run twice (the
applier re-reads which records are still open inside its write transaction), because a pass that outlives
``ttl`` lets a second holder in.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.models import Lease

T = TypeVar("T")

DEFAULT_TTL = timedelta(minutes=2)


def holder_name() -> str:
    """Who holds a lease: host, process and a random part (a process may run several holders)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _row(session: Session, name: str) -> Lease:
    # Created on first use; SQLite's BEGIN IMMEDIATE or PostgreSQL's row lock serialises what follows.
    table = Lease.__table__
    insert_ignoring_conflicts(session, table, [{"name": name, "again": False}], conflict=["name"])  # type: ignore[arg-type]
    lease = session.scalar(select(Lease).where(Lease.name == name).with_for_update())
    assert lease is not None
    return lease


def acquire(sessions: sessionmaker[Session], name: str, holder: str, *, clock: Clock, ttl: timedelta) -> bool:
    """Take the lease if it is free or expired; otherwise ask its holder for another pass. True if taken."""
    now = clock.now()
    with sessions.begin() as session:
        lease = _row(session, name)
        if lease.holder is not None and lease.expires_at is not None and lease.expires_at > now:
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
