"""SMS replies (mobile-originated messages): an opt-out keyword withdraws consent and queues one confirmation;
any other reply goes to the staff inbox.

Called once per stored inbound record, when its event is recorded for the first time. A refusal that changes
nothing (the SMSC redelivered it, or the number had already refused) records nothing more and sends no second
confirmation: Decree 91/2020 art. 16 asks for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.models import InboxReply, Message
from broadcaster.pending import stop_withdrawn
from broadcaster.settings import Settings
from broadcaster.vocabulary import MessageKind, MessageStatus
from channels.sms.encoding import analyse
from consent.keywords import Keywords, OptOut, classify_reply, confirmation_sms
from consent.ledger import ADVERTISING, PUBLIC_INFORMATION, current, withdraw
from consent.suppression import address_key

# The purposes that offer an opt-out (official_duty offers none: consent.policy).
OPT_OUT_PURPOSES = (PUBLIC_INFORMATION, ADVERTISING)
SOURCE = "sms_keyword"
RECORDED_BY = "sms keyword"


@dataclass(frozen=True)
class ReplyRules:
    """What handling a reply needs from the settings: the keywords, and the name a confirmation is signed with."""

    keywords: Keywords
    sender: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplyRules:
        return cls(keywords=settings.consent.keywords(), sender=settings.org.short_name)


@dataclass(frozen=True)
class Reply:
    """One mobile-originated message, as stored."""

    inbound_id: int
    provider: str
    sender: str
    text: str
    received_at: datetime


def sms_address(sender: str) -> str:
    """The sender as the ledger and the outbox store numbers (E.164), or as given when it is no phone number."""
    from broadcaster.contacts.phones import PhoneError, parse_phone  # phonenumbers' metadata is heavy

    raw = sender.strip()
    try:
        return parse_phone(raw if raw.startswith(("+", "0")) else f"+{raw}").e164
    except PhoneError:
        return raw


def handle_replies(session: Session, replies: Sequence[Reply], *, rules: ReplyRules, now: datetime) -> None:
    """Withdraw and confirm for each refusal, file every other reply in the inbox; in the caller's transaction."""
    inbox: list[dict[str, object]] = []
    for reply in replies:
        if isinstance(classify_reply(reply.text, rules.keywords), OptOut):
            _opt_out(session, reply, rules=rules, now=now)
        else:
            inbox.append(
                {
                    "inbound_id": reply.inbound_id,
                    "provider": reply.provider,
                    "from_number": sms_address(reply.sender)[:32],
                    "text": reply.text,
                    "received_at": reply.received_at,
                    "handled": False,
                }
            )
    insert_ignoring_conflicts(session, InboxReply.__table__, inbox, conflict=["inbound_id"])  # type: ignore[arg-type]


def _opt_out(session: Session, reply: Reply, *, rules: ReplyRules, now: datetime) -> None:
    address = sms_address(reply.sender)
    still_open = [p for p in OPT_OUT_PURPOSES if current(session, "sms", address, p) is not False]
    if not still_open:
        return  # already refused (a redelivered MO): no new event, no second confirmation
    evidence = f"inbound record {reply.inbound_id}: {reply.text!r}"
    for purpose in still_open:
        event = withdraw(
            session,
            channel="sms",
            address=address,
            purpose=purpose,
            source=SOURCE,
            recorded_by=RECORDED_BY,
            at=now,
            evidence=evidence,
        )
        audit.record_consent_event(session, event, inbound_id=reply.inbound_id)
        stop_withdrawn(session, event)
    body = confirmation_sms(rules.sender)
    analysis = analyse(body)
    row = {
        # One confirmation per stored record, whoever applies it and however often.
        "idempotency_key": f"opt-out-confirmation:{reply.provider}:{reply.inbound_id}",
        "kind": MessageKind.SYSTEM,
        "channel": "sms",
        "provider": reply.provider,
        "address": address,
        "address_key": address_key("sms", address),
        "status": MessageStatus.QUEUED,
        "hold": False,
        "attempts": 0,
        "body": body,
        "context": {},
        "encoding": analysis.encoding.value,
        "segments": analysis.segments,
        "parts_total": 0,
        "parts_delivered": 0,
        "created_at": now,
    }
    insert_ignoring_conflicts(session, Message.__table__, [row], conflict=["idempotency_key"])  # type: ignore[arg-type]
    session.flush()
