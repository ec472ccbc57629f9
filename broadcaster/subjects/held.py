"""Where a person's address is held: one finder per table, shared by the export and the erasure so that both
see exactly the same rows.

A subject is one address, normalised as the rest of the engine stores it: a phone in E.164, an e-mail
lower-cased (consent.suppression.address_key). Inbound records keep the provider's raw payload, so they are
pre-filtered in SQL on the address's digits (or its text) and confirmed by reading the payload.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, func, or_, select, union
from sqlalchemy.orm import Session

from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.phones import PhoneError, parse_phone
from broadcaster.db.models import (
    AuditEntry,
    Contact,
    ContactImport,
    DeliveryEventRow,
    DeviceToken,
    InboundRecord,
    InboxReply,
    Message,
)
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.i18n import translate
from broadcaster.outbox.replies import sms_address
from channels.base import Channel
from channels.sms.receipts import read_pdu
from consent.erasure import subject_hash
from consent.models import CampaignExclusion, ConsentEvent, DoNotCallEntry, Suppression
from consent.suppression import address_key

# The audit entries of subject requests name the person by the keyed hash (subject_id), never the address.
AUDIT_SUBJECT_TYPE = "data_subject"


@dataclass(frozen=True)
class Subject:
    """One person's address: the channel it belongs to and its key (E.164, or the e-mail lower-cased)."""

    channel: str
    key: str
    # What an inbound payload must contain (in SQL, before it is read): digits of the number, or the e-mail.
    needles: tuple[str, ...]


def parse_subject(raw: str) -> Subject:
    """PHONE (any usual spelling) or EMAIL; a UserError naming the value when it is neither."""
    try:
        if "@" in raw:
            key = address_key("email", normalize_email(raw))
            return Subject("email", key, (key,))
        phone = parse_phone(raw)
    except (PhoneError, EmailError) as exc:
        raise UserError(
            _("'%(value)s' is not a phone number or an e-mail address: %(reason)s")
            % {"value": raw, "reason": translate(exc.reason)}
        ) from None
    significant = phone.national.lstrip("0")
    # The SMPP gateway stores the PDU's octets as hex: the number's ASCII digits appear hex-encoded there.
    return Subject("sms", phone.e164, (significant, significant.encode().hex()))


def keyed_hash(secret: str, subject: Subject) -> str:
    """The subject's hash under the erasure key ([security] subject_key, else unsubscribe_secret), as
    tombstones keep it."""
    if not secret:
        raise UserError(
            _(
                "[security] subject_key and unsubscribe_secret are empty: data-subject requests name the person "
                "by a hash keyed with one of them. Set subject_key in broadcaster.toml (broadcaster init writes "
                "one) and keep it: a new key no longer recognises earlier erasures"
            )
        )
    return subject_hash(secret, subject.channel, subject.key)


def _is_subject(subject: Subject) -> ColumnElement[bool]:
    if subject.channel == "sms":
        return Contact.phone == subject.key
    return func.lower(Contact.email) == subject.key


def contacts(session: Session, subject: Subject) -> list[Contact]:
    return list(session.scalars(select(Contact).where(_is_subject(subject)).order_by(Contact.id)))


def devices(session: Session, contact_ids: Sequence[int]) -> list[DeviceToken]:
    """The push devices registered for the person's contacts (erasure takes them with the contacts)."""
    if not contact_ids:
        return []
    query = select(DeviceToken).where(DeviceToken.contact_id.in_(list(contact_ids))).order_by(DeviceToken.id)
    return list(session.scalars(query))


def messages(session: Session, subject: Subject, *, subject_hash: str | None = None) -> list[Message]:
    """The subject's messages by address key (every writer fills it), and with ``subject_hash`` also those
    whose address retention removed, by their keyed address hash (the same key and hash: audit.hashes).
    Push notifications are addressed to device tokens, ZNS messages (social) to the phone: those of the
    subject's contacts count too (a Page post has no contact, and is not personal data)."""
    same = select(Message.id).where(Message.channel == subject.channel, Message.address_key == subject.key)
    pushed = select(Message.id).where(
        Message.channel.in_([Channel.PUSH, Channel.SOCIAL]),
        Message.contact_id.in_(select(Contact.id).where(_is_subject(subject))),
    )
    found = [same, pushed]
    if subject_hash is not None:
        found.append(
            select(Message.id).where(Message.channel == subject.channel, Message.address_hash == subject_hash)
        )
    query = select(Message).where(Message.id.in_(union(*found)))
    return list(session.scalars(query.order_by(Message.id)))


def import_problems(session: Session, subject: Subject) -> list[tuple[ContactImport, int]]:
    """(import, index in its report's problems) for every problem row that quotes the address, in any spelling
    (a warning on a number as the file wrote it). Imports are one row per file: they are read in Python."""
    found: list[tuple[ContactImport, int]] = []
    for batch in session.scalars(select(ContactImport).order_by(ContactImport.id)):
        for index, problem in enumerate(batch.report.get("problems") or []):
            if isinstance(problem, dict) and _spells(problem.get("value"), subject):
                found.append((batch, index))
    return found


def delivery_events(
    session: Session, message_ids: Sequence[int], inbound_ids: Sequence[int]
) -> list[DeliveryEventRow]:
    if not message_ids and not inbound_ids:
        return []
    query = (
        select(DeliveryEventRow)
        .where(
            or_(
                DeliveryEventRow.message_id.in_(list(message_ids)),
                DeliveryEventRow.inbound_id.in_(list(inbound_ids)),
            )
        )
        .order_by(DeliveryEventRow.id)
    )
    return list(session.scalars(query))


def consent_events(session: Session, subject: Subject) -> list[ConsentEvent]:
    query = (
        select(ConsentEvent)
        # Push consent is recorded under the person's phone number or e-mail address (docs/push.md).
        .where(ConsentEvent.channel.in_((subject.channel, Channel.PUSH)), ConsentEvent.address == subject.key)
        .order_by(ConsentEvent.recorded_at, ConsentEvent.id)
    )
    return list(session.scalars(query))


def suppressions(session: Session, subject: Subject) -> list[Suppression]:
    query = select(Suppression).where(
        Suppression.channel == subject.channel, Suppression.address == subject.key
    )
    return list(session.scalars(query.order_by(Suppression.id)))


def do_not_call(session: Session, subject: Subject) -> list[DoNotCallEntry]:
    if subject.channel != "sms":
        return []
    return list(session.scalars(select(DoNotCallEntry).where(DoNotCallEntry.phone == subject.key)))


def exclusions(session: Session, subject: Subject) -> list[CampaignExclusion]:
    query = select(CampaignExclusion).where(
        CampaignExclusion.channel == subject.channel, CampaignExclusion.address == subject.key
    )
    return list(session.scalars(query.order_by(CampaignExclusion.id)))


def inbox_replies(session: Session, subject: Subject) -> list[InboxReply]:
    if subject.channel != "sms":
        return []
    query = select(InboxReply).where(InboxReply.from_number == subject.key).order_by(InboxReply.id)
    return list(session.scalars(query))


def inbound_records(session: Session, subject: Subject) -> list[InboundRecord]:
    """Records whose payload names the address: an SMS from or to the number (an MO, a receipt), a bounce
    quoting the e-mail address in any casing."""
    text = func.lower(cast(InboundRecord.payload, Text))
    query = (
        select(InboundRecord)
        .where(
            InboundRecord.channel == subject.channel,
            or_(*(text.contains(needle.lower(), autoescape=True) for needle in subject.needles)),
        )
        .order_by(InboundRecord.id)
    )
    return [record for record in session.scalars(query) if _names(record.payload, subject)]


def audit_entries(
    session: Session,
    *,
    subject_hash: str,
    consent_event_ids: Sequence[int],
    inbox_reply_ids: Sequence[int],
    contact_ids: Sequence[int],
) -> list[AuditEntry]:
    """Entries about the person: of their consent events, inbox replies and contacts (by id: entries carry no
    address), and of earlier subject requests (by the keyed hash)."""
    wanted = [
        and_(AuditEntry.subject_type == AUDIT_SUBJECT_TYPE, AuditEntry.subject_id == subject_hash),
    ]
    for subject_type, ids in (
        ("consent_event", consent_event_ids),
        ("inbox_reply", inbox_reply_ids),
        ("contact", contact_ids),
    ):
        if ids:
            wanted.append(
                and_(
                    AuditEntry.subject_type == subject_type, AuditEntry.subject_id.in_([str(i) for i in ids])
                )
            )
    return list(session.scalars(select(AuditEntry).where(or_(*wanted)).order_by(AuditEntry.id)))


def _spells(value: object, subject: Subject) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    if subject.channel == "email":
        return value.strip().lower() == subject.key
    try:
        return parse_phone(value).e164 == subject.key
    except PhoneError:
        return False


def _names(payload: dict[str, Any], subject: Subject) -> bool:
    if subject.channel == "email":
        return subject.key in json.dumps(payload, ensure_ascii=False).lower()
    try:
        fields = read_pdu(payload)
    except ValueError:
        fields = payload
    return any(
        isinstance(fields.get(name), str) and sms_address(fields[name]) == subject.key
        for name in ("source_addr", "destination_addr")
    )
