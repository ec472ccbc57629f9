"""Parse RFC 3464 delivery status notifications (bounces) into normalised ``DeliveryEvent`` objects.

A DSN is ``multipart/report; report-type=delivery-status`` (RFC 6522) whose second part is
``message/delivery-status`` (RFC 3464 §2): one block of per-message fields (``Reporting-MTA``,
``Arrival-Date``, ``Original-Envelope-Id``) and one block per recipient (``Final-Recipient``, ``Action``,
``Status``, ``Diagnostic-Code``, ``Remote-MTA``, ``Last-Attempt-Date``). A third part may return the original
message or its headers (``message/rfc822`` or ``text/rfc822-headers``).

Which message a DSN is about, best evidence first: the VERP envelope recipient of the DSN itself (the bounce
went to ``bounce+m{id}@…``, see :mod:`channels.email.mime`), then the returned ``Message-ID``, then the
``Original-Envelope-Id``. ``DeliveryEvent.provider_id`` is the returned ``Message-ID`` (what ``send`` reported);
``DeliveryEvent.outbox_id`` (and ``raw["message_id"]``) carries the outbox id when any of the three gave it, so
the engine can match a DSN that quotes nothing of the original.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from channels.base import DeliveryEvent, EventType
from channels.email.mime import message_id_from_header, message_id_from_verp
from channels.email.smtp_errors import ADDRESS_CODES

__all__ = ["ACTION_EVENTS", "is_dsn", "parse_dsn"]

# RFC 3464 §2.3.3 action-value -> our event. Only "failed" is final failure; "delayed" means the MTA is still
# trying (docs/architecture.md §4: an accepted, intermediate state). "relayed" went on to a system that gives no
# DSNs; "expanded" was delivered to a list or alias that forwarded it.
ACTION_EVENTS: Mapping[str, EventType] = {
    "failed": EventType.FAILED,
    "delivered": EventType.DELIVERED,
    "expanded": EventType.DELIVERED,
    "relayed": EventType.ACCEPTED,
    "delayed": EventType.ACCEPTED,
}

_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
_REPLY_CODE = re.compile(r"(?:^|[;\s])([245]\d\d)(?:[\s-]|$)")


def is_dsn(message: Message) -> bool:
    """True for ``multipart/report; report-type=delivery-status`` (RFC 6522 §3, RFC 3464 §2)."""
    return (
        message.get_content_type() == "multipart/report"
        and str(message.get_param("report-type", "", header="content-type")).lower() == "delivery-status"
    )


def _field_blocks(part: Message) -> list[Message]:
    """The per-message block followed by the per-recipient blocks of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the stdlib parses message/delivery-status into blocks of fields
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    blocks = [b for b in re.split(r"\r?\n\s*\r?\n", text.strip()) if b.strip()]
    return [email.message_from_string(block + "\n", policy=email.policy.compat32) for block in blocks]


def _typed_value(value: str | None) -> str | None:
    """``rfc822; bob@example.vn`` -> ``bob@example.vn`` (RFC 3464 §2.1.2 type;value fields)."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    _, sep, rest = text.partition(";")
    return (rest if sep else text).strip() or None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:  # RFC 5322 "-0000" means UTC with unknown local offset
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _original_headers(report: Message) -> Message | None:
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if content_type == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return email.message_from_bytes(raw, policy=email.policy.compat32)
    return None


def parse_dsn(data: bytes | str, *, envelope_recipient: str | None = None) -> list[DeliveryEvent]:
    """One event per recipient block of a DSN; ``[]`` when ``data`` is not a delivery-status report.

    ``envelope_recipient`` is the RCPT TO under which the DSN arrived (our VERP address), when known.
    """
    raw_bytes = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    report = email.message_from_bytes(raw_bytes, policy=email.policy.compat32)
    if not is_dsn(report):
        return []
    status_part = next(
        (
            p
            for p in report.walk()
            if p.get_content_type() in ("message/delivery-status", "message/global-delivery-status")
        ),
        None,
    )
    if status_part is None:
        return []
    blocks = _field_blocks(status_part)
    if not blocks:
        return []
    per_message, per_recipient = blocks[0], blocks[1:]

    original = _original_headers(report)
    original_message_id = original.get("Message-ID") if original is not None else None
    message_id_header = " ".join(str(original_message_id).split()) if original_message_id else None
    envelope_id = per_message.get("Original-Envelope-Id")
    # The DSN is addressed to the envelope sender of the original, i.e. our VERP address (RFC 3464 §2.2).
    verp_candidates = [
        envelope_recipient,
        report.get("X-Original-To"),
        report.get("Delivered-To"),
        report.get("To"),
        original.get("Return-Path") if original is not None else None,
    ]
    outbox_id = _first_id(
        [message_id_from_verp(str(c)) if c else None for c in verp_candidates]
        + [message_id_from_header(message_id_header), _envelope_id(envelope_id)]
    )
    reporting_mta = _typed_value(per_message.get("Reporting-MTA"))
    arrival = _date(per_message.get("Arrival-Date"))

    events: list[DeliveryEvent] = []
    for block in per_recipient:
        action = str(block.get("Action", "")).strip().lower()
        status = str(block.get("Status", "")).strip()
        status_match = _STATUS.match(status)
        status_code = ".".join(status_match.groups()) if status_match else None
        diagnostic = block.get("Diagnostic-Code")
        diagnostic_text = " ".join(str(diagnostic).split()) if diagnostic else None
        reply = _REPLY_CODE.search(_typed_value(diagnostic_text) or "") if diagnostic_text else None
        event_type = ACTION_EVENTS.get(action, EventType.UNKNOWN)
        if event_type is EventType.FAILED and status_code is not None and status_code.startswith("4."):
            # A "failed" with a 4.x.x status is an MTA giving up on a transient condition, typically
            # 4.4.7 delivery time expired (RFC 3463 §3.5): the message expired, it was not refused.
            event_type = EventType.EXPIRED
        final_recipient = _typed_value(block.get("Final-Recipient")) or _typed_value(
            block.get("Original-Recipient")
        )
        events.append(
            DeliveryEvent(
                type=event_type,
                provider_id=message_id_header,
                occurred_at=_date(block.get("Last-Attempt-Date")) or arrival,
                status_text=status_code or (status or None),
                error_code=reply.group(1) if reply else None,
                recipient=final_recipient,
                outbox_id=outbox_id,
                # A hard bounce: the mailbox does not exist or is disabled (docs/domain.md §5). A full mailbox
                # (5.2.2) or a policy refusal (5.7.x) says nothing about the address.
                address_invalid=event_type is EventType.FAILED and _plain(status_match) in ADDRESS_CODES,
                raw={
                    "message_id": outbox_id,
                    "action": action,
                    "status": status or None,
                    "diagnostic_code": diagnostic_text,
                    "final_recipient": final_recipient,
                    "remote_mta": _typed_value(block.get("Remote-MTA")),
                    "reporting_mta": reporting_mta,
                    "original_envelope_id": str(envelope_id) if envelope_id else None,
                },
            )
        )
    return events


def _plain(status: re.Match[str] | None) -> str | None:
    """``5.01.001`` -> ``5.1.1``: RFC 3463 §2 numbers compare by value."""
    return ".".join(str(int(part)) for part in status.groups()) if status else None


def _envelope_id(value: Any) -> int | None:
    # We may pass ENVID=m{id} (RFC 3461 §4.4); accept "m12345" or a VERP-looking value.
    if not value:
        return None
    match = re.fullmatch(r"\s*m(\d+)\s*", str(value))
    return int(match.group(1)) if match else None


def _first_id(values: Iterable[int | None]) -> int | None:
    return next((v for v in values if v is not None), None)
