"""Test helper: a contact withdraws consent on a channel, the way the engine records it in the ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.db.models import Contact
from consent import ledger


def opt_out(
    session: Session,
    external_id: str,
    channel: str,
    *,
    at: datetime,
    purpose: str = ledger.PUBLIC_INFORMATION,
) -> str:
    """Record a withdrawal for the contact's address on ``channel``; returns that address."""
    contact = session.scalars(select(Contact).where(Contact.external_id == external_id)).one()
    address = contact.phone if channel == "sms" else contact.email
    assert address is not None, f"{external_id} has no address for {channel}"
    ledger.withdraw(
        session,
        channel=channel,
        address=address,
        purpose=purpose,
        source="email_link" if channel == "email" else "sms_keyword",
        recorded_by="test",
        at=at,
    )
    return address
