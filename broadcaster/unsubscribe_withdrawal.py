"""One-click e-mail unsubscribe: from a List-Unsubscribe token to a withdrawal in the consent ledger.

The web endpoint (RFC 8058 POST) and the mailto reader call this; it verifies the token, finds the message,
and records a ``withdraw`` event (source ``email_link``) for the message's address and campaign purpose.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.campaigns.store import definition_of
from broadcaster.db.models import CampaignVersion, Message
from broadcaster.pending import stop_withdrawn
from broadcaster.unsubscribe import verify_token
from consent import ledger
from consent.models import ConsentEvent

RECORDED_BY = "unsubscribe link"


def message_for_token(session: Session, *, secret: str, token: str) -> Message | None:
    """The e-mail the token was made for, or None for a forged token or an unknown message (reads only)."""
    if not secret:  # without a secret no link was offered, and any tag would verify
        return None
    message_id = verify_token(secret, token)
    if message_id is None:
        return None
    message = session.get(Message, message_id)
    return message if message is not None and message.channel == "email" else None


def withdraw_by_token(session: Session, *, secret: str, token: str, at: datetime) -> ConsentEvent | None:
    """Record the opt-out the token stands for; None (nothing written) for a forged token or an unknown message.

    Idempotent: when the address has already withdrawn for the purpose, that withdrawal is returned and
    nothing is written (mail clients may send the one-click POST more than once)."""
    message = message_for_token(session, secret=secret, token=token)
    if message is None:
        return None
    purpose = _purpose_of(session, message)
    already = ledger.latest(session, "email", message.address, purpose)
    if already is not None and already.action == ledger.WITHDRAW:
        return already
    event = ledger.withdraw(
        session,
        channel="email",
        address=message.address,
        purpose=purpose,
        source="email_link",
        evidence=f"message {message.id}",
        recorded_by=RECORDED_BY,
        at=at,
    )
    audit.record_consent_event(session, event, message=message.id)
    stop_withdrawn(session, event)
    return event


def _purpose_of(session: Session, message: Message) -> str:
    # Messages outside a campaign (test sends) carry the default purpose of campaigns.
    version = session.get(CampaignVersion, message.version_id) if message.version_id is not None else None
    return definition_of(version).purpose.value if version is not None else ledger.PUBLIC_INFORMATION
