"""A withdrawal of consent recorded by staff or by a system acting for them: the one path the CLI's
``consent withdraw`` and the REST API share (ledger event, its audit entry, and the pending messages it stops,
all in the caller's transaction)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.clock import Clock
from broadcaster.contacts.emails import normalize_email
from broadcaster.contacts.phones import parse_phone
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.pending import stop_withdrawn
from consent import ledger
from consent.models import ConsentEvent
from consent.suppression import address_key


@dataclass(frozen=True)
class Withdrawal:
    event: ConsentEvent
    channel: str
    address: str
    stopped: int


def parse_address(raw: str, channel: str | None = None) -> tuple[str, str]:
    """(channel, normalised address): phones as contacts import stores them (E.164), e-mails normalised. On
    ``push`` the address names the person (phone, else e-mail, lower-cased: docs/push.md, "Consent")."""
    inferred = "email" if "@" in raw else "sms"
    if channel == "push":
        _named_by, key = parse_address(raw, inferred)
        return "push", address_key(inferred, key)
    if channel is not None and channel != inferred:
        raise UserError(
            _("'%(address)s' is not an address for channel '%(channel)s'")
            % {"address": raw, "channel": channel}
        )
    if inferred == "email":
        return "email", normalize_email(raw)
    return "sms", parse_phone(raw).e164


def withdraw_as_staff(
    session: Session,
    *,
    address: str,
    channel: str | None,
    purpose: str,
    reason: str,
    recorded_by: str,
    clock: Clock,
    notice: str | None = None,
    evidence: str | None = None,
) -> Withdrawal:
    """Record that the person no longer agrees; every message of that channel and purpose not yet sent to
    them stops. Raises ``ConsentError``, ``PhoneError`` or ``EmailError`` for bad input."""
    channel, key = parse_address(address, channel)
    event = ledger.withdraw(
        session,
        channel=channel,
        address=key,
        purpose=purpose,
        source="staff",
        notice_version=notice,
        evidence=evidence,
        reason=reason,
        recorded_by=recorded_by,
        at=clock.now(),
    )
    audit.record_consent_event(session, event)
    return Withdrawal(event, channel, key, stop_withdrawn(session, event))
