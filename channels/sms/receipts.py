"""Turn one stored ``deliver_sm`` (a delivery receipt or a mobile-originated message) into a DeliveryEvent.

Input is the record the SMPP adapter hands to ``on_inbound`` and the engine stores before the deliver_sm is
answered, so that any record can be parsed again later. The adapter keeps the PDU's own octets (``pdu_hex``,
read here by ``read_pdu`` with ``channels.sms.deliver_sm``: the gateway spends no time on it); a plain mapping of
the fields works as well. Keys (all optional except where said; unknown keys are ignored)::

    pdu_hex                  str                 the whole deliver_sm PDU, header included
    esm_class, data_coding, source_addr, destination_addr, ... (int / str, as in SMPP v3.4 §4.6.1)
    short_message            bytes               or  short_message_hex    str (hex of the octets)
    message_payload          bytes               or  message_payload_hex  str (TLV 0x0424)
    receipted_message_id     str | bytes         TLV 0x001E (C-octet string; trailing NULs tolerated)
    message_state            int                 TLV 0x0427 (§5.2.28)
    network_error_code_hex   str                 TLV 0x0423 (3 octets: network type + 2-octet code)
    received_at              ISO-8601 str        when the adapter read the PDU (aware, UTC)

Receipts are not standardised in practice (docs/domain.md §4): the text of SMPP v3.4 Appendix B is parsed
case-insensitively, in any order, with missing fields tolerated, and the TLVs win when both are present.

**Message ids.** Carriers report the id of a receipt in a different form from the submit_sm_resp: hex in one,
decimal in the other, upper or lower case, sometimes zero-padded. ``normalize_id`` gives the stored form (the id
as given, stripped of NULs and blanks, lower-cased). ``id_variants`` adds, when the id reads as a number, its
value written in the other base and without leading zeros. Two ids *match* when their variant sets intersect
(``ids_match``); the engine stores or indexes the variants of each submit id and looks up any variant of a
receipt id, preferring an exact match of the normalised form when several rows qualify.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from channels.base import DeliveryEvent, EventType, normalize_provider_id
from channels.sms.deliver_sm import deliver_sm_from_octets
from channels.sms.encoding import decode_gsm7
from channels.sms.unknown_subscriber import says_no_such_number

__all__ = [
    "MESSAGE_STATES",
    "STAT_EVENTS",
    "ReceiptFields",
    "decode_short_message",
    "deliver_sm_from_octets",
    "id_variants",
    "ids_match",
    "is_receipt",
    "normalize_id",
    "parse_deliver_sm",
    "parse_receipt_text",
]

# SMPP v3.4 §5.2.12 esm_class bits 5-2 (message type) on deliver_sm: 0x04 = SMSC delivery receipt,
# 0x20 = intermediate delivery notification. Both carry a receipt; anything else is an MO message.
ESM_RECEIPT_BITS: Final = 0x04 | 0x20
ESM_UDHI: Final = 0x40  # §5.2.12 bit 6: short_message starts with a User Data Header

# SMPP v3.4 §5.2.28 message_state (TLV 0x0427) -> (stat word of Appendix B, event).
MESSAGE_STATES: Final[dict[int, tuple[str, EventType]]] = {
    1: ("ENROUTE", EventType.ACCEPTED),
    2: ("DELIVRD", EventType.DELIVERED),
    3: ("EXPIRED", EventType.EXPIRED),
    4: ("DELETED", EventType.FAILED),
    5: ("UNDELIV", EventType.FAILED),
    6: ("ACCEPTD", EventType.ACCEPTED),
    7: ("UNKNOWN", EventType.UNKNOWN),
    8: ("REJECTD", EventType.FAILED),
}

# SMPP v3.4 Appendix B "stat" words (7 letters), plus the long spellings and ENROUTE that some SMSCs send
# (docs/domain.md §4). Looked up upper-cased.
STAT_EVENTS: Final[dict[str, EventType]] = {
    "DELIVRD": EventType.DELIVERED,
    "DELIVERED": EventType.DELIVERED,
    "UNDELIV": EventType.FAILED,
    "UNDELIVERABLE": EventType.FAILED,
    "REJECTD": EventType.FAILED,
    "REJECTED": EventType.FAILED,
    "DELETED": EventType.FAILED,
    "EXPIRED": EventType.EXPIRED,
    "ACCEPTD": EventType.ACCEPTED,
    "ACCEPTED": EventType.ACCEPTED,
    "ENROUTE": EventType.ACCEPTED,
    "UNKNOWN": EventType.UNKNOWN,
}

# Appendix B field names. "submit date" / "done date" contain a blank; "text" runs to the end.
_FIELD_RE: Final = re.compile(r"(?i)\b(id|sub|dlvrd|submit[ _]date|done[ _]date|stat|err|text)\s*:")
_HEX_RE: Final = re.compile(r"[0-9a-f]+")
# Appendix B's layout, as most SMSCs send it: the fields in order, one blank apart, ``text:`` last and optional.
_APPENDIX_B_RE: Final = re.compile(
    r"id:(?P<id>\S*) sub:(?P<sub>\S*) dlvrd:(?P<dlvrd>\S*) submit date:(?P<submit_date>\S*)"
    r" done date:(?P<done_date>\S*) stat:(?P<stat>\S*) err:(?P<err>\S*)(?: text:(?P<text>.*))?",
    re.DOTALL,
)


ReceiptFields = dict[str, str]


normalize_id = normalize_provider_id  # the stored form of a provider message id


def id_variants(value: str | bytes | None) -> frozenset[str]:
    """Every form under which the same id may come back: itself, and its value in the other base.

    ``"1A2B"`` -> ``{"1a2b", "6699"}``; ``"0006699"`` -> ``{"0006699", "6699", "1a2b", "26265"}``:
    a string of decimal digits is also valid hex, so both readings are offered (the engine prefers an exact
    match). Non-numeric ids (UUIDs, ids with letters beyond ``f``) have only themselves.
    """
    norm = normalize_id(value)
    if norm is None:
        return frozenset()
    variants = {norm}
    # Cap at 32 hex digits (128 bits): longer strings are not numeric ids in any SMSC we know.
    if len(norm) <= 32 and _HEX_RE.fullmatch(norm):
        as_hex = int(norm, 16)
        variants.add(format(as_hex, "x"))
        variants.add(str(as_hex))
        if norm.isdigit():
            as_dec = int(norm, 10)
            variants.add(str(as_dec))
            variants.add(format(as_dec, "x"))
    return frozenset(variants)


def ids_match(a: str | bytes | None, b: str | bytes | None) -> bool:
    """True when two ids may name the same message (their variant sets intersect)."""
    return bool(id_variants(a) & id_variants(b))


def parse_receipt_text(text: str) -> ReceiptFields:
    """The Appendix B fields of a receipt text, keys lower-cased (``submit date`` -> ``submit_date``).

    Tolerant: any order, any case, missing fields simply absent, ``text:`` keeps the rest of the string.
    The text most SMSCs send (Appendix B's own layout) is read with one anchored match; anything else goes
    through the tolerant reader, which gives the same fields for that layout, only slower.
    """
    canonical = _APPENDIX_B_RE.fullmatch(text)
    if canonical is None:
        return _parse_receipt_text_tolerantly(text)
    fields = {key: value for key, value in canonical.groupdict().items() if value is not None}
    if "text" in fields:
        fields["text"] = fields["text"].strip()
    return fields


def _parse_receipt_text_tolerantly(text: str) -> ReceiptFields:
    fields: ReceiptFields = {}
    matches = list(_FIELD_RE.finditer(text))
    for index, match in enumerate(matches):
        key = match.group(1).lower().replace(" ", "_")
        if key in fields:
            continue  # a repeated field must not override the first one
        if key == "text":
            fields[key] = text[match.end() :].strip()
            break  # everything after text: is the message's own words
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = text[match.end() : end].strip()
        fields[key] = value.split()[0] if value else ""
    return fields


def _octets(fields: Mapping[str, Any], name: str) -> bytes:
    value = fields.get(name)
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    hex_value = fields.get(f"{name}_hex")
    if isinstance(hex_value, str) and hex_value:
        return bytes.fromhex(hex_value)
    if isinstance(value, str):
        return value.encode("latin-1", errors="replace")
    return b""


def decode_short_message(data: bytes, *, data_coding: int, esm_class: int = 0) -> str:
    """Text of a short_message: the UDH is dropped (esm_class bit 6) and the octets decoded per data_coding.

    SMPP v3.4 §5.2.19: 0x00 SMSC default alphabet (GSM 03.38, sent unpacked), 0x01 IA5/ASCII, 0x03 Latin-1,
    0x08 UCS-2 (read as UTF-16-BE, which also accepts surrogate pairs). Anything else is read as Latin-1 so
    that nothing is lost.
    """
    if esm_class & ESM_UDHI and data:
        data = data[1 + data[0] :]
    coding = data_coding & 0xFF
    if coding == 0x08:
        return data.decode("utf-16-be", errors="replace")
    if coding == 0x00:
        try:
            return decode_gsm7(data)
        except (ValueError, KeyError, IndexError):
            return data.decode("latin-1")
    if coding == 0x01:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")


def _receipt_time(value: str | None, tz: tzinfo) -> datetime | None:
    """Appendix B dates are YYMMDDhhmm (some SMSCs add ss), in the SMSC's own clock."""
    if not value or not value.isascii() or not value.isdigit() or len(value) not in (10, 12):
        return None
    yy, month, day, hour, minute = (int(value[i : i + 2]) for i in range(0, 10, 2))
    second = int(value[10:12]) if len(value) == 12 else 0
    year = 1900 + yy if yy >= 69 else 2000 + yy  # strptime's %y pivot
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(UTC)
    except ValueError:
        return None


def _received_at(fields: Mapping[str, Any]) -> datetime | None:
    value = fields.get("received_at")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def is_receipt(fields: Mapping[str, Any]) -> bool:
    """A delivery receipt (esm_class 0x04 / 0x20, or a receipted_message_id TLV) rather than an MO message."""
    esm_class = int(fields.get("esm_class") or 0)
    return bool(esm_class & ESM_RECEIPT_BITS) or bool(normalize_id(fields.get("receipted_message_id")))


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# smpplib logs a WARNING for every vendor TLV it skips (docs/peers.md gotcha 5), and real receipts carry them on
# every PDU; that warning is the only thing its command module logs.
logging.getLogger("smpplib.command").setLevel(logging.ERROR)


def text_of(value: Any) -> str:
    """smpplib gives C-octet strings as bytes (with a NUL at times); records want plain text."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.split(b"\x00", 1)[0].decode("latin-1")
    return str(value)


def read_pdu(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """A record kept as the PDU's own octets (``pdu_hex``: what the SMPP gateway stores, untouched) with
    the deliver_sm's fields read out of them; any other record as it is. ValueError when the octets are no
    readable deliver_sm."""
    if "pdu_hex" not in fields or "esm_class" in fields:
        return fields
    try:
        parsed = deliver_sm_from_octets(bytes.fromhex(fields["pdu_hex"]))
    except ValueError as exc:
        raise ValueError(f"unreadable PDU: {exc}") from exc
    return {**parsed, **fields}


def parse_deliver_sm(fields: Mapping[str, Any], *, receipt_tz: tzinfo = UTC) -> DeliveryEvent:
    """One DeliveryEvent for one deliver_sm record (see the module docstring for the keys).

    ``receipt_tz`` is the zone of the SMSC's clock for the receipt's ``done date`` (Appendix B dates carry no
    zone); when the receipt has no usable date, ``received_at`` is used.
    """
    fields = read_pdu(fields)
    esm_class = int(fields.get("esm_class") or 0)
    data_coding = int(fields.get("data_coding") or 0)
    octets = _octets(fields, "short_message") or _octets(fields, "message_payload")
    raw = dict(fields)

    if not is_receipt(fields):
        return DeliveryEvent(
            type=EventType.INBOUND,
            provider_id=None,
            occurred_at=_received_at(fields),
            sender=fields.get("source_addr") or None,
            recipient=fields.get("destination_addr") or None,
            text=decode_short_message(octets, data_coding=data_coding, esm_class=esm_class),
            raw=raw,
        )

    text = decode_short_message(octets, data_coding=data_coding, esm_class=esm_class & ESM_UDHI)
    parsed = parse_receipt_text(text)
    provider_id = normalize_id(fields.get("receipted_message_id")) or normalize_id(parsed.get("id"))

    state = _int_or_none(fields.get("message_state"))
    stat_word = parsed.get("stat", "").upper() or None
    event_type: EventType
    if state is not None and state in MESSAGE_STATES:
        word, event_type = MESSAGE_STATES[state]
        stat_word = stat_word or word
    elif stat_word is not None and stat_word in STAT_EVENTS:
        event_type = STAT_EVENTS[stat_word]
    else:
        event_type = EventType.UNKNOWN

    err = parsed.get("err") or None
    network_error = str(fields["network_error_code_hex"]) if fields.get("network_error_code_hex") else None
    error_code = err or network_error

    return DeliveryEvent(
        type=event_type,
        provider_id=provider_id,
        occurred_at=_receipt_time(parsed.get("done_date"), receipt_tz) or _received_at(fields),
        status_text=stat_word,
        error_code=error_code,
        raw=raw,
        provider_id_forms=id_variants(provider_id),
        address_invalid=event_type == EventType.FAILED
        and says_no_such_number(fields, stat_word=stat_word, err=err, network_error_hex=network_error),
    )
