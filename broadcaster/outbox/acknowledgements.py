"""A delivery confirmed by the recipient's own device: the city app says a push notification was shown.

The app's backend calls the signed acknowledgement endpoint (``web/app_push_ack_routes.py``); this records
the DELIVERED event and moves the message as a provider's receipt would (guarded: a failure stays a failure),
in the caller's transaction, and cancels the person's waiting fallback (``outbox.fallbacks``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.models import DeliveryEventRow, Message
from broadcaster.outbox.fallbacks import cancel_fallbacks_of
from broadcaster.outbox.status import sources_for
from broadcaster.vocabulary import MessageStatus
from channels.base import Channel, EventType

__all__ = ["SHOWN_STATUS_TEXT", "acknowledge_push"]

SHOWN_STATUS_TEXT = "shown on the device"


def acknowledge_push(session: Session, *, message_id: int, token: str, now: datetime) -> str | None:
    """Record that push message ``message_id``, sent to ``token``, was shown. Returns ``delivered`` (it moved),
    ``already`` (a repeated or late acknowledgement: nothing more), or None when no sent push message to that
    token has this id."""
    message = session.scalar(
        select(Message).where(
            Message.id == message_id, Message.channel == Channel.PUSH, Message.address == token
        )
    )
    if message is None or message.sent_at is None:
        return None
    insert_ignoring_conflicts(
        session,
        DeliveryEventRow.__table__,  # type: ignore[arg-type]
        [
            {
                "dedupe_key": f"push-shown:{message_id}",
                "message_id": message_id,
                "inbound_id": None,
                "provider": message.provider,
                "provider_id": message.provider_ref,
                "type": EventType.DELIVERED.value,
                "status_text": SHOWN_STATUS_TEXT,
                "error_code": None,
                "occurred_at": now,
                "recorded_at": now,
            }
        ],
        conflict=["dedupe_key"],
    )
    moved = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status.in_(sorted(sources_for(MessageStatus.DELIVERED))))
        .values(status=MessageStatus.DELIVERED, final_at=now, reason=None)
        .execution_options(synchronize_session=False)
    )
    if not getattr(moved, "rowcount", 0):
        return "already"
    cancel_fallbacks_of(session, [message_id], now=now)
    return "delivered"
