"""Reading a deliver_sm PDU straight off its octets (SMPP v3.4 §4.6.1) into the JSON-able fields a stored
record keeps.

The process that applies receipts reads every stored deliver_sm once. smpplib's generic parser builds a Command
object per PDU (a sequence number, every one of its ~40 parameters set to None) and then looks each field and
each TLV tag up by name in its tables; that was ~30% of the CPU of applying receipts. deliver_sm has one fixed
layout, so it is read here straight off the octets. smpplib stays the reference: the tests check that both read
the same fields from the same octets.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import smpplib.command_codes
import smpplib.exceptions

__all__ = ["DELIVER_SM_ID", "deliver_sm_from_octets"]

_HEADER: Final = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number
_HEADER_SIZE: Final = 16
_TLV_HEADER: Final = struct.Struct(">HH")  # tag, length
DELIVER_SM_ID: Final = 0x00000005

# TLVs (§5.3.2) that records keep; any other tag, vendor tags included, is skipped by its length.
_TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E  # C-octet string
_TLV_NETWORK_ERROR_CODE: Final = 0x0423  # 3 octets: network type + error code, kept as hex
_TLV_MESSAGE_PAYLOAD: Final = 0x0424  # octets, kept as hex
# Integer TLVs: tag -> (key, size in octets).
_INT_TLVS: Final[dict[int, tuple[str, int]]] = {
    0x0427: ("message_state", 1),
    0x020C: ("sar_msg_ref_num", 2),
    0x020E: ("sar_total_segments", 1),
    0x020F: ("sar_segment_seqnum", 1),
}
_INT_TLV_NAMES: Final = tuple(name for name, _ in _INT_TLVS.values())


class _Cursor:
    """Reads a PDU's octets front to back. Every read checks the end of the PDU; an error names the field and
    the offset (from the first octet of the PDU) where it starts."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.end = len(data)
        self.pos = pos

    def _short(self, field: str, needed: int) -> ValueError:
        left = self.end - self.pos
        return ValueError(
            f"deliver_sm cut short: {field} at offset {self.pos} needs {needed} octet(s), {left} left"
        )

    def octet(self, field: str) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self._short(field, 1)
        self.pos = pos + 1
        return self.data[pos]

    def octets(self, count: int, field: str) -> bytes:
        pos = self.pos
        if pos + count > self.end:
            raise self._short(field, count)
        self.pos = pos + count
        return self.data[pos : pos + count]

    def tlv(self) -> tuple[int, bytes]:
        """One optional parameter: tag (2 octets), length (2), value (length octets)."""
        at = self.pos
        tag, length = _TLV_HEADER.unpack(self.octets(4, "TLV header"))
        if self.pos + length > self.end:
            left = self.end - self.pos
            raise ValueError(
                f"TLV 0x{tag:04X} at offset {at} runs past the end: length {length}, {left} octet(s) left"
            )
        self.pos += length
        return tag, self.data[self.pos - length : self.pos]

    def c_string(self, field: str) -> str:
        """A C-octet string: up to its NUL, which is consumed. Latin-1, as text_of reads smpplib's bytes."""
        pos = self.pos
        nul = self.data.find(0, pos, self.end)
        if nul < 0:
            raise ValueError(f"deliver_sm {field} at offset {pos} has no terminating NUL")
        self.pos = nul + 1
        return self.data[pos:nul].decode("latin-1")


def _command_name(command_id: int) -> str:
    try:
        return str(smpplib.command_codes.get_command_name(command_id))
    except smpplib.exceptions.UnknownCommandError:
        return "unknown"


def deliver_sm_from_octets(data: bytes) -> dict[str, Any]:
    """The fields of one whole deliver_sm PDU (header included), as the JSON-able keys this module reads.
    ValueError, naming the field and its offset, for anything else."""
    if len(data) < _HEADER_SIZE:
        raise ValueError(f"deliver_sm cut short: {len(data)} octet(s), the header alone takes {_HEADER_SIZE}")
    command_length, command_id, _status, sequence = _HEADER.unpack_from(data)
    if command_id != DELIVER_SM_ID:
        name = _command_name(command_id)
        raise ValueError(f"command_id 0x{command_id:08X} ({name}) at offset 4 is not deliver_sm (0x00000005)")
    if command_length != len(data):
        raise ValueError(
            f"command_length {command_length} at offset 0 does not match the {len(data)} octets given"
        )

    cursor = _Cursor(data, _HEADER_SIZE)
    fields: dict[str, Any] = {
        "command": "deliver_sm",
        "sequence": sequence,
        "service_type": cursor.c_string("service_type"),
        "source_addr_ton": cursor.octet("source_addr_ton"),
        "source_addr_npi": cursor.octet("source_addr_npi"),
        "source_addr": cursor.c_string("source_addr"),
        "dest_addr_ton": cursor.octet("dest_addr_ton"),
        "dest_addr_npi": cursor.octet("dest_addr_npi"),
        "destination_addr": cursor.c_string("destination_addr"),
        "esm_class": cursor.octet("esm_class"),
        "protocol_id": cursor.octet("protocol_id"),
        "priority_flag": cursor.octet("priority_flag"),
    }
    cursor.c_string("schedule_delivery_time")
    cursor.c_string("validity_period")
    fields["registered_delivery"] = cursor.octet("registered_delivery")
    cursor.octet("replace_if_present_flag")
    fields["data_coding"] = cursor.octet("data_coding")
    cursor.octet("sm_default_msg_id")
    sm_length = cursor.octet("sm_length")
    fields["short_message_hex"] = cursor.octets(sm_length, "short_message").hex()

    # Absent TLVs are None, as smpplib leaves them.
    message_payload: str | None = None
    network_error_code: str | None = None
    receipted_message_id: str | None = None
    ints: dict[str, int | None] = dict.fromkeys(_INT_TLV_NAMES)
    while cursor.pos < cursor.end:
        tag_at = cursor.pos
        tag, value = cursor.tlv()
        if tag == _TLV_RECEIPTED_MESSAGE_ID:
            # C-octet string: up to the first NUL. A value without its NUL is kept whole (smpplib, which takes
            # the last octet for the NUL, would drop a character of the id).
            receipted_message_id = value.split(b"\x00", 1)[0].decode("latin-1") or None
        elif tag == _TLV_MESSAGE_PAYLOAD:
            message_payload = value.hex() or None
        elif tag == _TLV_NETWORK_ERROR_CODE:
            network_error_code = value.hex() or None
        elif tag in _INT_TLVS:
            name, size = _INT_TLVS[tag]
            if len(value) != size:
                raise ValueError(
                    f"TLV 0x{tag:04X} {name} at offset {tag_at} has length {len(value)}, not {size}"
                )
            ints[name] = int.from_bytes(value, "big")
        # Any other tag (vendor TLVs: real SMSCs send them on every receipt) is skipped.

    fields["message_payload_hex"] = message_payload
    fields["receipted_message_id"] = receipted_message_id
    fields["message_state"] = ints["message_state"]
    fields["network_error_code_hex"] = network_error_code
    fields["sar_msg_ref_num"] = ints["sar_msg_ref_num"]
    fields["sar_total_segments"] = ints["sar_total_segments"]
    fields["sar_segment_seqnum"] = ints["sar_segment_seqnum"]
    return fields
