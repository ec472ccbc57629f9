"""Test helper: a queued message not yet written to any provider, as the planner leaves it."""

from __future__ import annotations

from broadcaster.context import AppContext
from broadcaster.db.models import Message
from broadcaster.vocabulary import MessageKind, MessageStatus


def pending(
    context: AppContext,
    address: str,
    *,
    purpose: str | None = "public_information",
    channel: str = "sms",
    campaign_id: str | None = None,
    key: str | None = None,
) -> int:
    """A queued message to ``address`` (purpose None: a system message); returns its id."""
    with context.sessions.begin() as session:
        message = Message(
            idempotency_key=key or f"test:{address}:{purpose}:{campaign_id}",
            kind=MessageKind.CAMPAIGN if purpose else MessageKind.SYSTEM,
            campaign_id=campaign_id,
            channel=channel,
            provider="sms_main" if channel == "sms" else "mail",
            address=address,
            address_key=address.lower(),
            purpose=purpose,
            status=MessageStatus.QUEUED,
            body="Thông báo",
            created_at=context.clock.now(),
        )
        session.add(message)
        session.flush()
        return message.id
