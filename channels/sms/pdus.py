"""The PDUs of a send window, written and read as octets (SMPP v3.4 §3.2, §4.4, §4.6.2).

A window carries one submit_sm out and one submit_sm_resp back per part, and one deliver_sm in and one
deliver_sm_resp out per receipt. smpplib builds and parses each of them as a generic Command, looking every
field up by name; on the gateway that was a quarter of its time. These four have a fixed layout, so they are
written and read here directly. smpplib still does everything else (binds, enquire_link, unbind, the rare
PDUs), and the tests check these octets against what smpplib makes of the same fields.
"""

from __future__ import annotations

import struct
from typing import Final

SUBMIT_SM: Final = 0x00000004
SUBMIT_SM_RESP: Final = 0x80000004
DELIVER_SM: Final = 0x00000005
DELIVER_SM_RESP: Final = 0x80000005

_HEADER: Final = struct.Struct(">LLLL")  # command_length, command_id, command_status, sequence_number
_SUBMIT_SM_RESP_ID: Final = SUBMIT_SM_RESP.to_bytes(4, "big")
_ADDRESS_MAX: Final = 20  # §4.4.1: source_addr and destination_addr are C-octet strings of at most 21 octets


def command_id(raw: bytes) -> int:
    return int.from_bytes(raw[4:8], "big")


def address(value: str, field: str = "destination_addr") -> bytes:
    """An address as its C-octet string; ValueError when it cannot be one (smpplib would cut it short)."""
    try:
        octets = value.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{field} {value!r} is not ASCII") from None
    if len(octets) > _ADDRESS_MAX or b"\x00" in octets:
        raise ValueError(f"{field} {value!r} does not fit a C-octet string of {_ADDRESS_MAX + 1} octets")
    return octets + b"\x00"


class SubmitSmWriter:
    """submit_sm PDUs from one source to destinations of one numbering plan: the parts of the body that
    never change are built once."""

    def __init__(
        self,
        *,
        source_ton: int,
        source_npi: int,
        source_addr: str,
        dest_ton: int,
        dest_npi: int,
        registered_delivery: int,
    ) -> None:
        # service_type "" (the SMSC's default), the source address, the destination's TON and NPI.
        self._head = (
            b"\x00"
            + bytes((source_ton, source_npi))
            + address(source_addr, "source_addr")
            + bytes((dest_ton, dest_npi))
        )
        self._registered_delivery = registered_delivery

    def submit_sm(
        self, sequence: int, *, destination: bytes, esm_class: int, data_coding: int, short_message: bytes
    ) -> bytes:
        """``destination``: from ``address()``."""
        if len(short_message) > 254:
            raise ValueError(f"short_message of {len(short_message)} octets (at most 254, §4.4.1)")
        body = b"".join(
            (
                self._head,
                destination,
                # esm_class, protocol_id, priority_flag, schedule_delivery_time "", validity_period "",
                # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
                bytes(
                    (esm_class, 0, 0, 0, 0, self._registered_delivery, 0, data_coding, 0, len(short_message))
                ),
                short_message,
            )
        )
        return _HEADER.pack(16 + len(body), SUBMIT_SM, 0, sequence) + body


def deliver_sm_resp(sequence: int, status: int) -> bytes:
    """§4.6.2: the header and an empty message_id."""
    return _HEADER.pack(17, DELIVER_SM_RESP, status, sequence) + b"\x00"


def read_submit_sm_resp(raw: bytes) -> tuple[int, int, str | None] | None:
    """(sequence, status, message_id) of a submit_sm_resp; None for any other PDU. §4.4.2: the header and
    one C-octet string (absent when the status is an error)."""
    if raw[4:8] != _SUBMIT_SM_RESP_ID:
        return None
    status = int.from_bytes(raw[8:12], "big")
    sequence = int.from_bytes(raw[12:16], "big")
    message_id = raw[16:].split(b"\x00", 1)[0].decode("latin-1") or None
    return sequence, status, message_id
