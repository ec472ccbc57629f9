"""Planning what is not one message per person and channel: a social provider's named targets (one message
per target and run, to no contact) and cross-channel fallbacks (a person's message on the fallback channel
waits, linked to its primary, until the primary is delivered or the wait is over; docs/social.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.orm import Session

from broadcaster.campaigns.audience import too_big_reason
from broadcaster.campaigns.messages import MessageText
from broadcaster.campaigns.schema import Fallback
from broadcaster.db.models import Message
from broadcaster.vocabulary import MessageKind, MessageStatus

__all__ = [
    "FALLBACK_FROM_KEY",
    "FALLBACK_SUFFIX",
    "cancel_fallbacks",
    "link_fallbacks",
    "social_context",
    "social_options",
    "target_rows",
]

# The idempotency key of a fallback message ends so (its own key, made as usual, plus this): the rows of a
# run that are fallbacks are found by it, in SQL, with no column of their own.
FALLBACK_SUFFIX = ":fallback"
# Its stored context names the channel it stands in for (status, messages log).
FALLBACK_FROM_KEY = "fallback_from"
CANCELLED_REASON = "fallback not needed: the %s message was delivered"


def social_context(text: MessageText) -> dict[str, Any]:
    """What a social message keeps of its rendering for the outbound options (``outbox/composition.py``)."""
    context: dict[str, Any] = {}
    for key, value in (
        ("link", text.link),
        ("image", text.image),
        ("template_id", text.template_id),
        ("template_data", text.template_data),
    ):
        if value:
            context[key] = value
    return context


def social_options(context: dict[str, Any], *, attempts: int) -> dict[str, Any]:
    """The outbound options of a social message: what ``social_context`` kept, and ``resend`` from its second
    attempt on (an earlier one may have reached the provider: after ``OutcomeUnknown`` with ``on_uncertain:
    resend``, or a worker lost while sending), so a Page adapter looks for the earlier post first."""
    options = {key: value for key, value in context.items() if key != FALLBACK_FROM_KEY}
    if attempts > 1:
        options["resend"] = True
    return options


def target_rows(
    *,
    targets: Iterable[str],
    text: MessageText,
    channel: str,
    provider: str,
    run: int,
    version: int,
    campaign_id: str,
    purpose: str,
    now: datetime,
    not_before: datetime | None,
) -> list[dict[str, Any]]:
    """One row per named target (a Facebook Page), with no contact; the same text for each."""
    exclusion = too_big_reason(channel, too_long=False) if text.too_large else None
    rows = []
    for target in dict.fromkeys(t.strip() for t in targets):
        rows.append(
            {
                "idempotency_key": f"run:{run}:{channel}:target:{target}",
                "kind": MessageKind.CAMPAIGN,
                "run_id": run,
                "campaign_id": campaign_id,
                "version_id": version,
                "contact_id": None,
                "chunk_id": None,
                "channel": channel,
                "provider": provider,
                "address": target,
                "address_key": target,
                "purpose": purpose,
                "status": MessageStatus.SUPPRESSED if exclusion else MessageStatus.QUEUED,
                "hold": False,
                "reason": exclusion,
                "error_code": None,
                "not_before": None if exclusion else not_before,
                "attempts": 0,
                "subject": None,
                "body": text.body,
                "context": social_context(text),
                "encoding": None,
                "segments": None,
                "cost": None,
                "provider_ref": None,
                "parts_total": 0,
                "parts_delivered": 0,
                "created_at": now,
                "claimed_at": None,
                "sent_at": None,
                "final_at": now if exclusion else None,
            }
        )
    return rows


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
        row["idempotency_key"] += FALLBACK_SUFFIX
        row["context"] = {**row["context"], FALLBACK_FROM_KEY: str(fallback.from_)}
        if row["status"] == MessageStatus.QUEUED:
            row["not_before"] = max(row["not_before"] or now, primary_at[contact] + wait)


def _waiting_fallbacks(run_id: int, contact_id: int) -> ColumnElement[bool]:
    # Waiting, or claimed but not yet handed over: the hand-over (claims.mark_handed) is guarded the same
    # way, so of the cancel and the hand-over exactly one wins.
    return and_(
        Message.run_id == run_id,
        Message.contact_id == contact_id,
        Message.idempotency_key.like(f"%{FALLBACK_SUFFIX}"),
        or_(
            Message.status == MessageStatus.QUEUED,
            and_(Message.status == MessageStatus.SENDING, Message.handed_at.is_(None)),
        ),
    )


def cancel_fallbacks(session: Session, delivered: Iterable[tuple[int, int, str]], *, now: datetime) -> int:
    """Cancel the waiting fallbacks of delivered primaries, ``(run id, contact id, channel)`` each, in the
    caller's transaction (the one that records the delivery); returns how many were cancelled."""
    cancelled = 0
    for run_id, contact_id, channel in set(delivered):
        result = session.execute(
            update(Message)
            .where(_waiting_fallbacks(run_id, contact_id), Message.channel != channel)
            .values(
                status=MessageStatus.CANCELLED,
                reason=CANCELLED_REASON % channel,
                final_at=now,
                chunk_id=None,
            )
            .execution_options(synchronize_session=False)
        )
        cancelled += int(getattr(result, "rowcount", 0) or 0)
    return cancelled
