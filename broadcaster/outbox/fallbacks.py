"""Cross-channel fallback per person: "Zalo ZNS first, SMS if not delivered within N minutes".

At planning, a person's message on the campaign's ``fallback.to`` channel becomes a fallback when the person
has a message to go on ``fallback.from``: it waits (``not_before``) until N minutes past its primary's
moment. Only a real delivery signal stops it (a signed Zalo webhook event, the city app's acknowledgement of
a shown notification: a DELIVERED event), never a provider's acceptance: the transaction that records the
primary's delivery cancels its waiting fallback. A person with nothing to go on ``from`` gets the ``to``
message at once (docs/social.md, "Fallback").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from broadcaster.campaigns.schema import Fallback
from broadcaster.db.models import Message
from broadcaster.vocabulary import MessageStatus

__all__ = [
    "FALLBACK_FROM_KEY",
    "PUSH_ACK_DATA_KEY",
    "cancel_fallbacks",
    "cancel_fallbacks_of",
    "fallback_key",
    "is_unneeded_fallback",
    "link_fallbacks",
    "release_fallbacks_of",
]

# A fallback is found from its primary by its idempotency key, ``run:<run>:fallback:<from>:<contact>`` (one per
# person and run: a fallback channel has one address per person), through the key's unique index.
FALLBACK_SUFFIX = ":fallback"


def fallback_key(run_id: int, from_channel: str, contact_id: int) -> str:
    return f"run:{run_id}{FALLBACK_SUFFIX}:{from_channel}:{contact_id}"


# A push notification's ``data`` carries its outbox id under this key: the city app acknowledges a shown
# notification with it, which is the delivery signal that cancels a fallback.
PUSH_ACK_DATA_KEY = "message_id"
# Its stored context names the channel it stands in for (status, messages log).
FALLBACK_FROM_KEY = "fallback_from"
CANCELLED_REASON = "fallback not needed: the %s message was delivered"
WAITING_REASON = "fallback for %s: sent only if that message is not delivered in time"


def link_fallbacks(rows: list[dict[str, Any]], fallback: Fallback, *, now: datetime) -> None:
    """Turn a page's rows on ``fallback.to`` into fallbacks for the people who have a message to go on
    ``fallback.from``: each waits ``after_minutes`` past its primary's earliest moment. A person with nothing
    to go on ``from`` (no phone, opted out) gets the ``to`` message as usual, at once."""
    primary_at: dict[int, datetime] = {}
    for row in rows:
        if row["channel"] == fallback.from_ and row["status"] == MessageStatus.QUEUED and row["contact_id"]:
            at = row["not_before"] or now
            contact = row["contact_id"]
            primary_at[contact] = min(at, primary_at.get(contact, at))
    wait = timedelta(minutes=fallback.after_minutes)
    for row in rows:
        contact = row["contact_id"]
        if row["channel"] != fallback.to or contact not in primary_at:
            continue
        row["idempotency_key"] = fallback_key(row["run_id"], fallback.from_, contact)
        row["context"] = {**row["context"], FALLBACK_FROM_KEY: str(fallback.from_)}
        if row["status"] == MessageStatus.QUEUED:
            row["not_before"] = max(row["not_before"] or now, primary_at[contact] + wait)
            row["reason"] = row["reason"] or WAITING_REASON % fallback.from_


def cancel_fallbacks(session: Session, delivered: Iterable[tuple[int, int, str]], *, now: datetime) -> int:
    """Cancel the waiting fallbacks of delivered primaries, ``(run id, contact id, channel)`` each, in the
    caller's transaction (the one that records the delivery); returns how many were cancelled.

    Waiting means queued, or claimed but not yet handed over: the hand-over (``claims.mark_handed``) is
    guarded on the same ``status = 'sending' AND handed_at IS NULL``, so of the cancel and the hand-over
    exactly one wins (the database's row lock orders them), and a person never gets both."""
    by_channel: dict[str, list[str]] = {}
    for run_id, contact_id, channel in set(delivered):
        by_channel.setdefault(channel, []).append(fallback_key(run_id, channel, contact_id))
    cancelled = 0
    for channel, keys in sorted(by_channel.items()):
        for start in range(0, len(keys), 500):
            result = session.execute(
                update(Message)
                .where(
                    Message.idempotency_key.in_(keys[start : start + 500]),
                    or_(
                        Message.status == MessageStatus.QUEUED,
                        and_(Message.status == MessageStatus.SENDING, Message.handed_at.is_(None)),
                    ),
                )
                .values(status=MessageStatus.CANCELLED, reason=CANCELLED_REASON % channel, final_at=now)
                .execution_options(synchronize_session=False)
            )
            cancelled += int(getattr(result, "rowcount", 0) or 0)
    return cancelled


def cancel_fallbacks_of(session: Session, message_ids: Sequence[int], *, now: datetime) -> int:
    """Cancel the waiting fallbacks of these messages, just recorded as delivered (one read per 500)."""
    delivered: list[tuple[int, int, str]] = []
    for start in range(0, len(message_ids), 500):
        rows = session.execute(
            select(Message.run_id, Message.contact_id, Message.channel).where(
                Message.id.in_(list(message_ids[start : start + 500])),
                Message.run_id.is_not(None),
                Message.contact_id.is_not(None),
                Message.status == MessageStatus.DELIVERED,
            )
        )
        delivered.extend((run, contact, channel) for run, contact, channel in rows if run and contact)
    return cancel_fallbacks(session, delivered, now=now) if delivered else 0


def is_unneeded_fallback(reason: str | None) -> bool:
    """Whether a cancelled message's reason says it was a fallback its primary's delivery made unneeded."""
    prefix = CANCELLED_REASON.split("%s", 1)[0]
    return reason is not None and reason.startswith(prefix)


# A primary in one of these may still reach the person; only when none of theirs is does the fallback go early.
_FAILED_FOR_GOOD = (MessageStatus.PERMANENT_FAILURE, MessageStatus.SUPPRESSED, MessageStatus.CANCELLED)


def release_fallbacks_of(session: Session, message_ids: Sequence[int], *, now: datetime) -> int:
    """These messages just failed for good (ZNS: no Zalo account): a fallback waiting for the person goes now
    rather than at its deadline, once no other message of theirs on that channel in the run can still
    arrive (a person's other devices, on push). Returns how many were brought forward."""
    failed: set[tuple[int, int, str]] = set()
    for start in range(0, len(message_ids), 500):
        rows = session.execute(
            select(Message.run_id, Message.contact_id, Message.channel).where(
                Message.id.in_(list(message_ids[start : start + 500])),
                Message.run_id.is_not(None),
                Message.contact_id.is_not(None),
            )
        )
        failed.update((run, contact, channel) for run, contact, channel in rows if run and contact)
    released = 0
    for run_id, contact_id, channel in sorted(failed):
        hopeful = session.scalar(
            select(Message.id)
            .where(
                Message.run_id == run_id,
                Message.contact_id == contact_id,
                Message.channel == channel,
                Message.status.not_in(_FAILED_FOR_GOOD),
                Message.idempotency_key.not_like(f"%{FALLBACK_SUFFIX}%"),
            )
            .limit(1)
        )
        if hopeful is not None:
            continue
        result = session.execute(
            update(Message)
            .where(
                Message.idempotency_key == fallback_key(run_id, channel, contact_id),
                Message.status == MessageStatus.QUEUED,
                Message.not_before > now,
            )
            .values(not_before=now, chunk_id=None)
            .execution_options(synchronize_session=False)
        )
        released += int(getattr(result, "rowcount", 0) or 0)
    return released
