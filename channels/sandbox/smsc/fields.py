"""What the sandbox SMSC reads from and writes into PDU fields: concatenation (UDH or SAR TLVs), the text of a
short_message, Appendix B dates, message ids and the form receipts write them in."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Final

import smpp34

from channels.sandbox.smsc.records import SmscBehaviour
from channels.sms.encoding import decode_gsm7

# SMPP v3.4 §5.3.2 TLV tags used in receipts.
TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E
TLV_MESSAGE_STATE: Final = 0x0427
TLV_NETWORK_ERROR_CODE: Final = 0x0423
TLV_VENDOR_SANDBOX: Final = (
    0x1400  # vendor-specific range 0x1400-0x3FFF (§5.3.2): exercises unknown-TLV handling
)
# SMPP v3.4 §5.2.12 esm_class.
ESM_RECEIPT: Final = 0x04
ESM_UDHI: Final = 0x40

# Process-wide id counter: a restarted SMSC on the same port must not reissue ids a test still holds.
ID_COUNTER = itertools.count(0x10000000 + (int(time.time()) % 0x100000) * 0x100)


def parse_udh(short_message: bytes) -> tuple[int | None, int | None, int | None, bytes]:
    """``(reference, total, number, payload)`` of a short_message that starts with a UDH.

    Reads the concatenation IEs of 3GPP TS 23.040 §9.2.3.24.1 (IEI 0x00, 8-bit reference) and
    §9.2.3.24.8 (IEI 0x08, 16-bit reference); other IEs are skipped.
    """
    if not short_message:
        return None, None, None, short_message
    udhl = short_message[0]
    header, payload = short_message[1 : 1 + udhl], short_message[1 + udhl :]
    reference = total = number = None
    pos = 0
    while pos + 2 <= len(header):
        iei, length = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + length]
        if iei == 0x00 and length == 3:
            reference, total, number = value[0], value[1], value[2]
        elif iei == 0x08 and length == 4:
            reference, total, number = (value[0] << 8) | value[1], value[2], value[3]
        pos += 2 + length
    return reference, total, number, payload


def sar(tlvs: list[smpp34.Tlv], short_message: bytes) -> tuple[int | None, int | None, int | None, bytes]:
    """Concatenation by SAR TLVs 0x020C/0x020E/0x020F (SMPP v3.4 §5.3.2.22-24) instead of a UDH."""
    values = {tlv.tag: tlv.as_int() for tlv in tlvs if tlv.tag in (0x020C, 0x020E, 0x020F)}
    if len(values) < 3:
        return None, None, None, short_message
    return values[0x020C], values[0x020E], values[0x020F], short_message


def decode(payload: bytes, data_coding: int) -> str:
    # SMPP v3.4 §5.2.19: 0x08 UCS-2 (read as UTF-16-BE), 0x00 SMSC default alphabet (GSM 03.38 unpacked).
    if data_coding == 0x08:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding == 0x00:
        try:
            return decode_gsm7(payload)
        except (ValueError, KeyError, IndexError):
            return payload.decode("latin-1")
    return payload.decode("latin-1")


def smpp_date(moment: datetime) -> str:
    """Appendix B date format YYMMDDhhmm (the sandbox's clock is UTC)."""
    return moment.strftime("%y%m%d%H%M")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_message_id(behaviour: SmscBehaviour) -> str:
    style = behaviour.message_id_style
    if style == "uuid":
        return str(uuid.uuid4())
    number = next(ID_COUNTER)
    return str(number) if style == "decimal" else format(number, "X")


def receipt_id(behaviour: SmscBehaviour, message_id: str) -> str:
    """The id as a receipt writes it: as issued, or in the other base (SmscBehaviour.receipt_id_form)."""
    form = behaviour.receipt_id_form
    if form == "as_issued" or behaviour.message_id_style == "uuid":
        return message_id
    number = int(message_id, 16) if behaviour.message_id_style == "hex" else int(message_id)
    return str(number) if form == "decimal" else format(number, "X")
