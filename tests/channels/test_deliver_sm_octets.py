"""deliver_sm_from_octets (the hand-written deliver_sm reader) against smpplib's parser, the reference.

Every PDU here is built by smpplib (as an SMSC would send it); the reader must give exactly the dict that
deliver_sm_fields gives from smpplib's parse of the same octets, and refuse malformed octets with ValueError.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
import smpplib.smpp

from channels.base import EventType
from channels.sms.deliver_sm import deliver_sm_from_octets
from channels.sms.receipts import parse_deliver_sm, read_pdu, text_of


class _NoSequence:
    """smpplib numbers every PDU it builds, even one it parses; a parsed PDU keeps the number it came with."""

    @staticmethod
    def next_sequence() -> int:
        return 0


def _hex(value: Any) -> str | None:
    return value.hex() if isinstance(value, bytes) and value else None


def deliver_sm_fields(pdu: Any) -> dict[str, Any]:
    """The reference: the fields of a deliver_sm parsed by smpplib, as records keep them."""
    return {
        "command": "deliver_sm",
        "sequence": int(pdu.sequence),
        "service_type": text_of(pdu.service_type),
        "source_addr_ton": int(pdu.source_addr_ton or 0),
        "source_addr_npi": int(pdu.source_addr_npi or 0),
        "source_addr": text_of(pdu.source_addr),
        "dest_addr_ton": int(pdu.dest_addr_ton or 0),
        "dest_addr_npi": int(pdu.dest_addr_npi or 0),
        "destination_addr": text_of(pdu.destination_addr),
        "esm_class": int(pdu.esm_class or 0),
        "protocol_id": int(pdu.protocol_id or 0),
        "priority_flag": int(pdu.priority_flag or 0),
        "registered_delivery": int(pdu.registered_delivery or 0),
        "data_coding": int(pdu.data_coding or 0),
        "short_message_hex": (pdu.short_message or b"").hex(),
        "message_payload_hex": _hex(pdu.message_payload),
        "receipted_message_id": text_of(pdu.receipted_message_id) or None,
        "message_state": None if pdu.message_state is None else int(pdu.message_state),
        "network_error_code_hex": _hex(pdu.network_error_code),
        "sar_msg_ref_num": pdu.sar_msg_ref_num,
        "sar_total_segments": pdu.sar_total_segments,
        "sar_segment_seqnum": pdu.sar_segment_seqnum,
    }


RECEIPT_TEXT = (
    "id:5F5E100 sub:001 dlvrd:001 submit date:2611280600 done date:2611280601 stat:DELIVRD err:000 text:"
)


def build(sequence: int = 41, **fields: Any) -> bytes:
    """A deliver_sm's octets, built by smpplib."""
    pdu = smpplib.smpp.make_pdu("deliver_sm", client=_NoSequence(), **fields)
    pdu.sequence = sequence
    return bytes(pdu.generate())


def with_tlvs(octets: bytes, *tlvs: tuple[int, bytes]) -> bytes:
    """octets with raw TLVs appended (smpplib cannot build vendor TLVs) and command_length set to match."""
    body = octets[4:] + b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in tlvs)
    return struct.pack(">I", 4 + len(body)) + body


def with_length(octets: bytes, command_length: int) -> bytes:
    return struct.pack(">I", command_length) + octets[4:]


def reference(octets: bytes) -> dict[str, Any]:
    pdu = smpplib.smpp.parse_pdu(octets, client=_NoSequence(), allow_unknown_opt_params=True)
    return deliver_sm_fields(pdu)


UDH = bytes((5, 0, 3, 0x2A, 2, 1))  # concatenated SM, ref 0x2A, part 1 of 2
VENDOR = (0x1400, b"\x01\x02\x03vendor")

CASES: dict[str, bytes] = {
    "gsm7_receipt_text_only": build(
        source_addr="84912000001",
        destination_addr="SKHCN",
        esm_class=0x04,
        short_message=RECEIPT_TEXT.encode("ascii"),
    ),
    "gsm7_receipt_with_tlvs": build(
        source_addr="84912000001",
        destination_addr="SKHCN",
        esm_class=0x04,
        short_message=RECEIPT_TEXT.encode("ascii"),
        receipted_message_id="5F5E100",
        message_state=2,
        network_error_code=b"\x03\x00\x01",
    ),
    "ucs2_receipt_with_tlvs": build(
        source_addr="84912000001",
        destination_addr="8088",
        esm_class=0x04,
        data_coding=8,
        short_message=RECEIPT_TEXT.encode("utf-16-be"),
        receipted_message_id="a1b2c3d4-0000-4000-8000-000000000001",
        message_state=5,
    ),
    "ucs2_receipt_text_only": build(
        source_addr="84912000001",
        destination_addr="8088",
        esm_class=0x04,
        data_coding=8,
        short_message="id:77 stat:UNDELIV err:001 text:Chào".encode("utf-16-be"),
    ),
    "intermediate_notification": build(
        source_addr="84912000001",
        esm_class=0x20,
        short_message=b"id:9 stat:ENROUTE",
        message_state=1,
        receipted_message_id="9",
    ),
    "tlvs_only_empty_short_message": build(
        source_addr="84912000001",
        destination_addr="SKHCN",
        esm_class=0x04,
        receipted_message_id="5F5E100",
        message_state=2,
    ),
    "message_state_zero": build(esm_class=0x04, receipted_message_id="1", message_state=0),
    "network_error_code_only": build(esm_class=0x04, network_error_code=b"\x01\x00\x45"),
    "message_payload_instead_of_short_message": build(
        source_addr="84905123456",
        destination_addr="8088",
        data_coding=8,
        message_payload=("Hẹn gặp lại " * 30).encode("utf-16-be")[:250],
    ),
    "receipt_in_message_payload": build(
        esm_class=0x04, message_payload=RECEIPT_TEXT.encode("ascii"), receipted_message_id="ABC"
    ),
    "mo_with_udh_and_sar": build(
        source_addr="84905123456",
        destination_addr="8088",
        esm_class=0x40,
        data_coding=8,
        short_message=UDH + "Đà Nẵng mưa".encode("utf-16-be"),
        sar_msg_ref_num=0xBEEF,
        sar_total_segments=2,
        sar_segment_seqnum=1,
    ),
    "mo_sar_zero_values": build(
        source_addr="84905123456",
        short_message=b"x",
        sar_msg_ref_num=0,
        sar_total_segments=0,
        sar_segment_seqnum=0,
    ),
    "mo_gsm7_plain": build(
        source_addr="84905123456", destination_addr="8088", short_message=b"Xin ch\x7fo \x00 @", data_coding=0
    ),
    "mo_latin1": build(source_addr="84905123456", data_coding=3, short_message="café".encode("latin-1")),
    "empty_everything": build(sequence=0),
    "max_length_addresses_and_fields": build(
        sequence=0xFFFFFFFF,
        service_type="CMT12",  # 5 + NUL: the max of 6
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="A" * 20,  # 20 + NUL: the max of 21
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="8" * 20,
        esm_class=0x04,
        protocol_id=0x7F,
        priority_flag=3,
        schedule_delivery_time="261128060000000+",
        validity_period="000001000000000R",
        registered_delivery=1,
        replace_if_present_flag=1,
        data_coding=0xF5,
        sm_default_msg_id=9,
        short_message=bytes(range(1, 255)),  # 254 octets, the most short_message may hold
        receipted_message_id="F" * 64,  # 64 + NUL: the max of 65
    ),
    "vendor_tlv_skipped": with_tlvs(
        build(esm_class=0x04, short_message=b"id:1 stat:DELIVRD", receipted_message_id="1", message_state=2),
        VENDOR,
    ),
    "vendor_tlvs_around_known_ones": with_tlvs(
        build(esm_class=0x04, short_message=b"id:2 stat:UNDELIV"),
        VENDOR,
        (0x001E, b"2\x00"),
        (0x1401, b""),
        (0x0427, b"\x05"),
        (0x1500, bytes(300)),
    ),
    "other_standard_deliver_sm_tlvs": with_tlvs(
        build(short_message=b"hi"),
        (0x0204, b"\x00\x01"),  # user_message_reference
        (0x020A, b"\x1f\x90"),  # source_port
        (0x0019, b"\x01"),  # payload_type
    ),
    "receipted_message_id_with_extra_nuls": with_tlvs(build(esm_class=0x04), (0x001E, b"abc\x00\x00\x00")),
    "receipted_message_id_empty": with_tlvs(build(esm_class=0x04), (0x001E, b"\x00")),
    "receipted_message_id_zero_length": with_tlvs(build(esm_class=0x04), (0x001E, b"")),
    "empty_payload_and_error_code": with_tlvs(build(), (0x0424, b""), (0x0423, b"")),
    "repeated_tlv_last_wins": with_tlvs(build(esm_class=0x04), (0x0427, b"\x01"), (0x0427, b"\x02")),
    "latin1_octet_in_receipted_message_id": with_tlvs(
        build(esm_class=0x04), (0x001E, "ñ1".encode("latin-1") + b"\x00")
    ),
}


@pytest.mark.parametrize("octets", list(CASES.values()), ids=list(CASES))
def test_reads_the_same_fields_as_smpplib(octets: bytes) -> None:
    assert deliver_sm_from_octets(octets) == reference(octets)


def test_reads_the_same_fields_as_smpplib_on_random_pdus() -> None:
    """A seeded sweep over combinations of fields and TLVs (same PDUs every run)."""
    rng = random.Random(20261128)

    def text(alphabet: str, longest: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))

    for _ in range(400):
        fields: dict[str, Any] = {
            "service_type": text("CMTWAP", 5),
            "source_addr_ton": rng.randint(0, 6),
            "source_addr_npi": rng.choice((0, 1, 9)),
            "source_addr": text("0123456789ABCXYZ+", 20),
            "dest_addr_ton": rng.randint(0, 6),
            "dest_addr_npi": rng.choice((0, 1, 9)),
            "destination_addr": text("0123456789", 20),
            "esm_class": rng.choice((0, 0x04, 0x20, 0x40, 0x44)),
            "protocol_id": rng.randint(0, 255),
            "priority_flag": rng.randint(0, 3),
            "registered_delivery": rng.randint(0, 255),
            "data_coding": rng.choice((0, 1, 3, 8, 0xF0)),
        }
        if rng.random() < 0.2:
            fields["message_payload"] = rng.randbytes(rng.randint(1, 260))
        else:
            fields["short_message"] = rng.randbytes(rng.randint(0, 254))
        if rng.random() < 0.6:
            fields["receipted_message_id"] = text("0123456789abcdefABCDEF-", 64)
        for name, top in (
            ("message_state", 8),
            ("sar_msg_ref_num", 0xFFFF),
            ("sar_total_segments", 255),
            ("sar_segment_seqnum", 255),
        ):
            if rng.random() < 0.5:
                fields[name] = rng.randint(0, top)
        if rng.random() < 0.5:
            fields["network_error_code"] = rng.randbytes(3)
        octets = build(sequence=rng.randint(0, 0xFFFFFFFF), **fields)
        if rng.random() < 0.3:
            octets = with_tlvs(octets, (rng.randint(0x1400, 0x3FFF), rng.randbytes(rng.randint(0, 40))))
        assert deliver_sm_from_octets(octets) == reference(octets), octets.hex()


def test_value_types_are_the_ones_records_keep() -> None:
    fields = deliver_sm_from_octets(CASES["mo_with_udh_and_sar"])
    assert (fields["sar_msg_ref_num"], fields["sar_total_segments"], fields["sar_segment_seqnum"]) == (
        0xBEEF,
        2,
        1,
    )
    assert fields["receipted_message_id"] is None
    assert fields["message_state"] is None
    assert fields["message_payload_hex"] is None
    assert fields["network_error_code_hex"] is None
    assert fields["short_message_hex"] == (UDH + "Đà Nẵng mưa".encode("utf-16-be")).hex()
    receipt = deliver_sm_from_octets(CASES["gsm7_receipt_with_tlvs"])
    assert receipt["network_error_code_hex"] == "030001"
    assert receipt["message_state"] == 2
    assert receipt["receipted_message_id"] == "5F5E100"
    assert receipt["sequence"] == 41


# -- where the reader is deliberately not smpplib ----------------------------------------------------------


def test_a_standard_tlv_smpplib_does_not_expect_on_deliver_sm_is_skipped() -> None:
    """ussd_service_op (0x0501) comes on MOs from USSD gateways; smpplib knows the tag but not on deliver_sm."""
    octets = with_tlvs(build(source_addr="84905123456", short_message=b"*101#"), (0x0501, b"\x01"))
    with pytest.raises(KeyError):
        reference(octets)
    assert deliver_sm_from_octets(octets)["short_message_hex"] == b"*101#".hex()


def test_a_receipted_message_id_without_its_nul_is_kept_whole() -> None:
    """smpplib takes the last octet of a C-octet string TLV for its NUL, dropping a character when it is missing."""
    octets = with_tlvs(build(esm_class=0x04), (0x001E, b"5F5E100"))
    assert reference(octets)["receipted_message_id"] == "5F5E10"
    assert deliver_sm_from_octets(octets)["receipted_message_id"] == "5F5E100"


# -- refused octets ----------------------------------------------------------------------------------------

FULL = with_tlvs(
    build(
        service_type="CMT",
        source_addr="84912000001",
        destination_addr="SKHCN",
        esm_class=0x04,
        short_message=b"id:1 stat:DELIVRD",
        receipted_message_id="1",
        message_state=2,
    ),
    VENDOR,
)


def _tlv_boundaries(octets: bytes) -> set[int]:
    """Where the mandatory part ends and after each TLV: the only places a deliver_sm may end."""
    pos = octets.index(b"id:1 stat:DELIVRD") + len(b"id:1 stat:DELIVRD")
    ends = {pos}
    while pos < len(octets):
        (length,) = struct.unpack_from(">H", octets, pos + 2)
        pos += 4 + length
        ends.add(pos)
    return ends


def test_cut_anywhere_but_at_a_tlv_boundary_is_refused() -> None:
    """Cut at every offset, command_length set to the cut: only a cut between whole TLVs still reads."""
    boundaries = _tlv_boundaries(FULL)
    assert len(boundaries) == 4
    read: set[int] = set()
    for cut in range(16, len(FULL) + 1):
        octets = with_length(FULL[:cut], cut)
        try:
            deliver_sm_from_octets(octets)
        except ValueError as exc:
            assert "offset" in str(exc)  # noqa: PT017  only some cuts raise
        else:
            read.add(cut)
    assert read == boundaries


@pytest.mark.parametrize("cut", [0, 3, 4, 11, 15, 16, 20, 40, len(FULL) - 1])
def test_cut_short_without_fixing_the_length_is_refused(cut: int) -> None:
    with pytest.raises(ValueError, match=r"cut short|command_length"):
        deliver_sm_from_octets(FULL[:cut])


@pytest.mark.parametrize(
    ("octets", "match"),
    [
        pytest.param(
            bytes.fromhex("00000010800000040000000000000001"), r"0x80000004 \(submit_sm_resp\)", id="resp"
        ),
        pytest.param(
            bytes(smpplib.smpp.make_pdu("submit_sm", client=_NoSequence(), short_message=b"x").generate()),
            r"0x00000004 \(submit_sm\) at offset 4",
            id="submit_sm",
        ),
        pytest.param(
            bytes.fromhex("000000101234567800000000000000ff"), r"0x12345678 \(unknown\)", id="unknown"
        ),
        pytest.param(with_length(FULL, len(FULL) + 1), "command_length", id="length_too_long"),
        pytest.param(with_length(FULL, len(FULL) - 1), "command_length", id="length_too_short"),
        pytest.param(with_length(FULL, 0), "command_length", id="length_zero"),
        pytest.param(FULL + FULL, "command_length", id="two_pdus"),
        pytest.param(
            with_length(FULL[:-1], len(FULL) - 1), r"TLV 0x1400 at offset \d+ runs past", id="tlv_overrun"
        ),
        pytest.param(
            with_length(FULL + b"\x14\x00", len(FULL) + 2),
            r"TLV header at offset \d+ needs 4",
            id="tlv_header_cut",
        ),
        pytest.param(
            with_tlvs(build(), (0x0427, b"\x00\x02")),
            r"0x0427 message_state at offset \d+ has length 2",
            id="int_size",
        ),
        pytest.param(
            with_length(FULL[:24], 24),
            r"source_addr at offset 22 has no terminating NUL",
            id="c_string_no_nul",
        ),
        pytest.param(
            with_length(FULL[:20], 20), "cut short: source_addr_ton at offset 20", id="after_service_type"
        ),
    ],
)
def test_malformed_octets_are_refused(octets: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        deliver_sm_from_octets(octets)


def test_read_pdu_refuses_unreadable_octets_with_value_error() -> None:
    with pytest.raises(ValueError, match=r"unreadable PDU: .*TLV 0x1400"):
        read_pdu({"pdu_hex": with_length(FULL[:-1], len(FULL) - 1).hex()})
    with pytest.raises(ValueError, match="unreadable PDU: non-hexadecimal"):
        read_pdu({"pdu_hex": "not hex"})


# -- parse_deliver_sm on stored octets: the same event as before ----------------------------------------------


@pytest.mark.parametrize("case", ["gsm7_receipt_with_tlvs", "ucs2_receipt_text_only", "mo_with_udh_and_sar"])
def test_parse_deliver_sm_gives_the_event_it_gave_with_smpplib(case: str) -> None:
    octets = CASES[case]
    record = {"command": "deliver_sm", "sequence": 41, "received_at": "2026-11-28T06:01:00+00:00"}
    record["pdu_hex"] = octets.hex()
    before = parse_deliver_sm({**reference(octets), **record})  # what read_pdu did with smpplib

    event = parse_deliver_sm(record)

    assert event == before
    if case == "mo_with_udh_and_sar":
        assert (event.type, event.sender, event.text) == (EventType.INBOUND, "84905123456", "Đà Nẵng mưa")
    elif case == "gsm7_receipt_with_tlvs":
        assert (event.type, event.provider_id, event.error_code) == (EventType.DELIVERED, "5f5e100", "000")
    else:
        assert (event.type, event.provider_id, event.error_code) == (EventType.FAILED, "77", "001")
