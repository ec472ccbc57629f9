"""Handing back what a dead worker held: its claimed rows and the chunks it was running.

A worker stamps ``claimed_by`` ("host:pid") on the rows it claims, and ``handed_at`` on a row (committed) just
before its bytes go to the provider. So after a crash a claimed row never handed over goes back to the queue
as it was, and only a handed one may be at the provider: held as ``unknown`` for an operator, or queued
again when its campaign says ``on_uncertain: resend``. The stuck sweeper uses this after
``stuck_after_seconds``; the embedded supervisor uses it at once for a worker it saw die.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcaster.audit.deliveries import record_results
from broadcaster.campaigns.schema import OnUncertain
from broadcaster.campaigns.store import definition_of
from broadcaster.db.models import CampaignVersion, Chunk, Message
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import MessageStatus


def worker_id() -> str:
    """This process as ``claimed_by`` records it (called at claim time: a forked child has its own pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class HandBack:
    queued: int = 0  # never handed over: back in the queue, as before the claim
    held: int = 0  # handed over: the provider may have them; held as unknown for an operator
    resent: int = 0  # handed over, but their campaign says on_uncertain: resend

    def __iadd__(self, other: HandBack) -> HandBack:
        self.queued += other.queued
        self.held += other.held
        self.resent += other.resent
        return self

    def describe(self) -> str:
        """In the current language: it is printed by the commands that supervise workers."""
        parts = [_("%(n)s message(s) back in the queue") % {"n": self.queued}]
        if self.held:
            parts.append(_("%(n)s held as unknown (may have been sent)") % {"n": self.held})
        if self.resent:
            parts.append(_("%(n)s queued again (on_uncertain: resend)") % {"n": self.resent})
        return ", ".join(parts)


def hand_back(session: Session, *where: Any, now: datetime, cause: str = "stuck") -> HandBack:
    """Hand back the ``sending`` rows matching ``where`` whose worker is gone (``cause`` names why in the
    audit entry: stuck past ``stuck_after_seconds``, or the dead worker's id)."""
    sending = Message.status == MessageStatus.SENDING
    never_handed = session.execute(
        update(Message)
        .where(sending, Message.handed_at.is_(None), *where)
        .values(
            status=MessageStatus.QUEUED,
            chunk_id=None,
            attempts=Message.attempts - 1,
            claimed_at=None,
            claimed_by=None,
        )
    )
    report = HandBack(queued=int(getattr(never_handed, "rowcount", 0) or 0))
    handed = session.execute(
        select(Message.id, Message.version_id).where(sending, Message.handed_at.is_not(None), *where)
    ).all()
    resend_versions = {
        version.id
        for version in session.scalars(
            select(CampaignVersion).where(CampaignVersion.id.in_({vid for _id, vid in handed if vid}))
        )
        if definition_of(version).on_uncertain == OnUncertain.RESEND
    }
    moved: list[list[Any]] = []
    for message_id, version_id in handed:
        # The worker died after writing it: the provider may or may not have the message.
        values: dict[str, object]
        if version_id in resend_versions:
            values = {
                "status": MessageStatus.QUEUED,
                "chunk_id": None,
                "reason": "worker lost while sending; resent",
            }
            report.resent += 1
        else:
            values = {
                "status": MessageStatus.UNKNOWN,
                "hold": True,
                "reason": "worker lost while sending; held for an operator",
            }
            report.held += 1
        result = session.execute(update(Message).where(Message.id == message_id, sending).values(**values))
        if getattr(result, "rowcount", 0):
            moved.append([message_id, str(values["status"]), "worker_lost"])
    # Rows never handed over only went back to the queue (no outcome); the others changed for a reason.
    record_results(
        session,
        actor=f"sweeper@{worker_id()}",
        provider=None,
        subject_type="hand_back",
        subject_id=cause,
        messages=moved,
        at=now,
    )
    return report


def hand_back_worker(session: Session, worker: str, *, now: datetime) -> HandBack:
    """Everything a dead worker held: its claimed rows, and the unsent rows of the chunks it was running
    (its task is lost with it; the tick cuts them into new chunks)."""
    chunks = set(session.scalars(select(Chunk.id).where(Chunk.worker == worker, Chunk.finished_at.is_(None))))
    chunks.update(
        chunk_id
        for chunk_id in session.scalars(
            select(Message.chunk_id)
            .where(Message.claimed_by == worker, Message.status == MessageStatus.SENDING)
            .distinct()
        )
        if chunk_id is not None
    )
    report = hand_back(session, Message.claimed_by == worker, now=now, cause=worker)
    if chunks:
        session.execute(
            update(Message)
            .where(Message.chunk_id.in_(chunks), Message.status == MessageStatus.QUEUED)
            .values(chunk_id=None)
        )
        session.execute(
            update(Chunk).where(Chunk.id.in_(chunks), Chunk.finished_at.is_(None)).values(finished_at=now)
        )
    return report


def claimers_on_this_host(session: Session) -> set[str]:
    """Workers of this machine that hold rows in ``sending`` or run an unfinished chunk."""
    prefix = f"{socket.gethostname()}:"
    found = set(
        session.scalars(
            select(Message.claimed_by)
            .where(
                Message.status == MessageStatus.SENDING,
                Message.claimed_by.startswith(prefix, autoescape=True),
            )
            .distinct()
        )
    )
    found.update(
        session.scalars(
            select(Chunk.worker)
            .where(Chunk.finished_at.is_(None), Chunk.worker.startswith(prefix, autoescape=True))
            .distinct()
        )
    )
    return {worker for worker in found if worker}


def hand_back_dead_of_this_host(session: Session, *, now: datetime) -> dict[str, HandBack]:
    """What dead processes of this machine held (a worker killed with ``kill -9``, its pool children), handed
    back at once: a restarted ``broadcaster worker`` calls it, so its rows move again without waiting
    ``stuck_after_seconds``. A live process (or a pid taken again since) keeps its rows."""
    handed: dict[str, HandBack] = {}
    for worker in sorted(claimers_on_this_host(session)):
        pid = pid_of(worker)
        if pid is not None and pid != os.getpid() and not process_alive(pid):
            handed[worker] = hand_back_worker(session, worker, now=now)
    return handed


def pid_of(worker: str) -> int | None:
    _host, _sep, pid = worker.rpartition(":")
    return int(pid) if pid.isdigit() else None


def process_alive(pid: int) -> bool:
    """Whether a process of this machine runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rpartition(")")[2].split()[:1]
    except OSError:
        return True  # no /proc: trust kill()
    return state != ["Z"]


def release_unstarted_chunks(session: Session, queues: Sequence[str], *, now: datetime) -> int:
    """Chunks of these queues that no worker started: a dead worker may have fetched their tasks. Their rows
    go back to the tick (a task that still comes finds its chunk finished and empty)."""
    chunks = list(
        session.scalars(
            select(Chunk.id).where(
                Chunk.queue.in_(queues), Chunk.finished_at.is_(None), Chunk.worker.is_(None)
            )
        )
    )
    if chunks:
        session.execute(
            update(Message)
            .where(Message.chunk_id.in_(chunks), Message.status == MessageStatus.QUEUED)
            .values(chunk_id=None)
        )
        session.execute(update(Chunk).where(Chunk.id.in_(chunks)).values(finished_at=now))
    return len(chunks)
