"""Table tests: SMPP command_status -> error class, deliver_sm records -> DeliveryEvent, id normalisation."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import smpplib.client
import smpplib.smpp

from channels.base import EventType
from channels.errors import (
    ChannelError,
    ConfigurationError,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)
from channels.sms.receipts import (
    _APPENDIX_B_RE,
    _parse_receipt_text_tolerantly,
    _receipt_time,
    id_variants,
    ids_match,
    normalize_id,
    parse_deliver_sm,
    parse_receipt_text,
    read_pdu,
)
from channels.sms.smpp_errors import classify


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0x58, Throttled),
        (0x14, Throttled),
        (0x08, TransientError),
        (0x64, TransientError),
        (0x45, TransientError),
        (0x0B, RecipientRejected),
        (0x50, RecipientRejected),
        (0x51, RecipientRejected),
        (0x0D, ConfigurationError),
        (0x0E, ConfigurationError),
        (0x0F, ConfigurationError),
        (0x0A, ConfigurationError),
        (0x48, ConfigurationError),
        (0x49, ConfigurationError),
        (0x04, ConfigurationError),
        (0x05, ConfigurationError),
        (0x01, PermanentError),
        (0x43, PermanentError),
        (0x65, PermanentError),
        (0xC4, PermanentError),
        (0x0400, TransientError),  # vendor code we do not know
        (0xFF, TransientError),
    ],
)
def test_classify(status: int, expected: type[ChannelError]) -> None:
    error = classify(status)
    assert type(error) is expected
    assert error.code == f"0x{status:08X}"
    assert error.code in str(error)


def test_classify_rejects_ok_and_keeps_detail() -> None:
    with pytest.raises(ValueError, match="is not an error"):
        classify(0)
    assert classify(0x0B, detail="part 2/3").detail == "part 2/3"


def _receipt(text: str | None = None, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"esm_class": 0x04, "data_coding": 0, "source_addr": "84905123456"}
    if text is not None:
        record["short_message_hex"] = text.encode("ascii").hex()
    record.update(fields)
    return record


APPENDIX_B = (
    "id:{id} sub:001 dlvrd:001 submit date:2601150830 done date:2601150831 stat:{stat} err:{err} text:Xin"
)


@pytest.mark.parametrize(
    ("record", "event_type", "provider_id", "status_text", "error_code"),
    [
        # text only, every Appendix B stat word
        (_receipt(APPENDIX_B.format(id="1A2B", stat="DELIVRD", err="000")), EventType.DELIVERED, "1a2b", "DELIVRD", "000"),
        (_receipt(APPENDIX_B.format(id="77", stat="UNDELIV", err="001")), EventType.FAILED, "77", "UNDELIV", "001"),
        (_receipt(APPENDIX_B.format(id="77", stat="REJECTD", err="002")), EventType.FAILED, "77", "REJECTD", "002"),
        (_receipt(APPENDIX_B.format(id="77", stat="DELETED", err="000")), EventType.FAILED, "77", "DELETED", "000"),
        (_receipt(APPENDIX_B.format(id="77", stat="EXPIRED", err="000")), EventType.EXPIRED, "77", "EXPIRED", "000"),
        (_receipt(APPENDIX_B.format(id="77", stat="ACCEPTD", err="000")), EventType.ACCEPTED, "77", "ACCEPTD", "000"),
        (_receipt(APPENDIX_B.format(id="77", stat="ENROUTE", err="000")), EventType.ACCEPTED, "77", "ENROUTE", "000"),
        (_receipt(APPENDIX_B.format(id="77", stat="UNKNOWN", err="000")), EventType.UNKNOWN, "77", "UNKNOWN", "000"),
        # case-insensitive, any order, missing fields
        (_receipt("STAT:delivrd ID:00042"), EventType.DELIVERED, "00042", "DELIVRD", None),
        (_receipt("err:005 Stat:Undeliv Id:AbC"), EventType.FAILED, "abc", "UNDELIV", "005"),
        (_receipt("stat:BOGUS id:1"), EventType.UNKNOWN, "1", "BOGUS", None),
        # TLVs only (empty short_message), id with a trailing NUL, every message_state
        (_receipt(receipted_message_id="5F5E100\x00", message_state=2), EventType.DELIVERED, "5f5e100", "DELIVRD", None),
        (_receipt(receipted_message_id="9", message_state=1), EventType.ACCEPTED, "9", "ENROUTE", None),
        (_receipt(receipted_message_id="9", message_state=3), EventType.EXPIRED, "9", "EXPIRED", None),
        (_receipt(receipted_message_id="9", message_state=4), EventType.FAILED, "9", "DELETED", None),
        (_receipt(receipted_message_id="9", message_state=5), EventType.FAILED, "9", "UNDELIV", None),
        (_receipt(receipted_message_id="9", message_state=6), EventType.ACCEPTED, "9", "ACCEPTD", None),
        (_receipt(receipted_message_id="9", message_state=7), EventType.UNKNOWN, "9", "UNKNOWN", None),
        (_receipt(receipted_message_id="9", message_state=8), EventType.FAILED, "9", "REJECTD", None),
        (_receipt(receipted_message_id=b"ab12", message_state=5, network_error_code_hex="030001"),
         EventType.FAILED, "ab12", "UNDELIV", "030001"),
        # both: the TLV id and state win over the text
        (_receipt(APPENDIX_B.format(id="100000000", stat="DELIVRD", err="000"),
                  receipted_message_id="5F5E100", message_state=2), EventType.DELIVERED, "5f5e100", "DELIVRD", "000"),
        # raw bytes instead of hex, receipt marked only by the TLV
        ({"esm_class": 0, "short_message": b"", "receipted_message_id": "12", "message_state": 2},
         EventType.DELIVERED, "12", "DELIVRD", None),
        # no id anywhere
        (_receipt("garbage"), EventType.UNKNOWN, None, None, None),
    ],
)  # fmt: skip
def test_parse_deliver_sm_receipts(
    record: dict[str, Any],
    event_type: EventType,
    provider_id: str | None,
    status_text: str | None,
    error_code: str | None,
) -> None:
    event = parse_deliver_sm(record)
    assert event.type is event_type
    assert event.provider_id == provider_id
    assert event.status_text == status_text
    assert event.error_code == error_code
    assert event.raw == record


def test_receipt_done_date_is_read_in_the_smsc_zone() -> None:
    record = _receipt(APPENDIX_B.format(id="1", stat="DELIVRD", err="000"))
    assert parse_deliver_sm(record).occurred_at == datetime(2026, 1, 15, 8, 31, tzinfo=UTC)
    hanoi = timezone(timedelta(hours=7))
    assert parse_deliver_sm(record, receipt_tz=hanoi).occurred_at == datetime(2026, 1, 15, 1, 31, tzinfo=UTC)


def test_receipt_without_date_uses_received_at() -> None:
    record = _receipt("id:1 stat:DELIVRD", received_at="2026-01-15T08:00:00+00:00")
    assert parse_deliver_sm(record).occurred_at == datetime(2026, 1, 15, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("record", "text"),
    [
        ({"esm_class": 0, "data_coding": 8, "short_message_hex": "Chào Đà Nẵng".encode("utf-16-be").hex()}, "Chào Đà Nẵng"),
        ({"esm_class": 0, "data_coding": 0, "short_message": b"Xin ch\x7fo \x00"}, "Xin chào @"),
        ({"esm_class": 0x40, "data_coding": 8, "short_message": bytes((5, 0, 3, 1, 2, 1)) + "Đà".encode("utf-16-be")}, "Đà"),
        ({"esm_class": 0, "data_coding": 3, "short_message": "café".encode("latin-1")}, "café"),
        ({"esm_class": 0, "data_coding": 8, "short_message": b"", "message_payload_hex": "Hẹn".encode("utf-16-be").hex()}, "Hẹn"),
    ],
)  # fmt: skip
def test_parse_deliver_sm_mobile_originated(record: dict[str, Any], text: str) -> None:
    record = {"source_addr": "84905123456", "destination_addr": "8088", **record}
    event = parse_deliver_sm(record)
    assert event.type is EventType.INBOUND
    assert event.provider_id is None
    assert (event.sender, event.recipient, event.text) == ("84905123456", "8088", text)


def test_parse_receipt_text_keeps_free_text_whole() -> None:
    fields = parse_receipt_text("id:9 stat:DELIVRD text:hello id:10 stat:UNDELIV")
    assert fields == {"id": "9", "stat": "DELIVRD", "text": "hello id:10 stat:UNDELIV"}


@pytest.mark.parametrize(
    ("submit_id", "receipt_id", "match"),
    [
        ("5F5E100", "100000000", True),  # hex in submit_sm_resp, decimal in the receipt
        ("100000000", "5f5e100", True),  # and the other way round
        ("1A2B", "1a2b", True),  # case
        ("0000006699", "6699", True),  # zero padding
        (b"abc\x00", "ABC", True),  # bytes with a NUL, as smpplib hands them over
        ("6f1e2d3c-0000-4000-8000-000000000001", "6F1E2D3C-0000-4000-8000-000000000001", True),
        ("1A2B", "1A2C", False),
        ("100", "101", False),
        ("msg-1", "msg-2", False),
        (None, "1", False),
    ],
)
def test_ids_match(submit_id: str | bytes | None, receipt_id: str, match: bool) -> None:
    assert ids_match(submit_id, receipt_id) is match
    assert ids_match(receipt_id, submit_id) is match


def test_normalize_id_and_variants() -> None:
    assert normalize_id(" 1A2B\x00") == "1a2b"
    assert normalize_id("") is None
    assert id_variants("1A2B") == {"1a2b", "6699"}
    assert "1a2b" in id_variants("6699")
    assert "6699" in id_variants("6699")
    assert id_variants("hello") == {"hello"}


def _deliver_sm_octets(**fields: Any) -> bytes:
    """A deliver_sm as it comes off the wire (built by smpplib, sequence 41)."""
    client = smpplib.client.Client("sandbox", 0)
    pdu = smpplib.smpp.make_pdu("deliver_sm", client=client, **fields)
    pdu.sequence = 41
    return bytes(pdu.generate())


def test_a_record_kept_as_octets_reads_as_the_parsed_pdu() -> None:
    """The gateway stores the PDU's octets; read_pdu gives the same fields as parsing it, and the event follows."""
    octets = _deliver_sm_octets(
        source_addr="84912000001",
        destination_addr="SKHCN",
        esm_class=0x04,
        short_message=b"id:5F5E100 sub:001 dlvrd:001 submit date:2611280600 done date:2611280601 stat:DELIVRD",
        receipted_message_id="5F5E100",
        message_state=2,
    )
    record = {"command": "deliver_sm", "sequence": 41, "received_at": "2026-11-28T06:01:00+00:00"}
    record["pdu_hex"] = octets.hex()

    fields = read_pdu(record)

    assert fields["source_addr"] == "84912000001"
    assert fields["esm_class"] == 0x04
    assert fields["receipted_message_id"] == "5F5E100"
    assert fields["message_state"] == 2
    assert fields["sequence"] == 41
    assert fields["pdu_hex"] == octets.hex()
    event = parse_deliver_sm(record)
    assert (event.type, event.provider_id) == (EventType.DELIVERED, "5f5e100")


def test_a_plain_mapping_is_read_as_it_is() -> None:
    record = {"esm_class": 0x04, "receipted_message_id": "9", "message_state": 2}
    assert read_pdu(record) is record


@pytest.mark.parametrize(
    "pdu_hex",
    [
        "00000010800000040000000000000001",  # a submit_sm_resp, not a deliver_sm
        "0000001000000005000000",  # cut short inside the header
    ],
)
def test_octets_that_are_no_deliver_sm_are_refused(pdu_hex: str) -> None:
    with pytest.raises(ValueError, match="unreadable PDU"):
        read_pdu({"pdu_hex": pdu_hex})


def _appendix_b_texts() -> list[str]:
    """Receipt texts in Appendix B's layout, with the awkward values real SMSCs put in them."""
    rng = random.Random(34)
    ids = ["1A2B", "0006699", "", "5f5e100-abc", "ff" * 16]
    stats = ["DELIVRD", "UNDELIV", "EXPIRED", "", "delivrd"]
    dates = ["2501151230", "250115123059", "", "9912312359", "bad"]
    texts = [None, "", "Xin chao", "  padded  ", "stat:REJECTD err:999", "line\nbreak: id:9", "text:again"]
    result = []
    for _ in range(400):
        text = (
            f"id:{rng.choice(ids)} sub:{rng.choice(['001', '000', ''])} dlvrd:{rng.choice(['001', '000'])} "
            f"submit date:{rng.choice(dates)} done date:{rng.choice(dates)} stat:{rng.choice(stats)} "
            f"err:{rng.choice(['000', '001', '0x45', ''])}"
        )
        extra = rng.choice(texts)
        result.append(text if extra is None else f"{text} text:{extra}")
    return result


@pytest.mark.parametrize("text", _appendix_b_texts())
def test_the_appendix_b_layout_reads_as_the_tolerant_reader_reads_it(text: str) -> None:
    """The anchored fast path is taken for this layout, and gives field for field what the tolerant reader
    (any order, any case) gives for the same text."""
    assert _APPENDIX_B_RE.fullmatch(text) is not None
    assert parse_receipt_text(text) == _parse_receipt_text_tolerantly(text)


@pytest.mark.parametrize(
    "text",
    [
        "ID:1A2B SUB:001 DLVRD:001 SUBMIT DATE:2501151230 DONE DATE:2501151231 STAT:DELIVRD ERR:000",
        "stat:DELIVRD id:1A2B err:000",
        "id:1A2B  sub:001 dlvrd:001 submit date:1 done date:2 stat:DELIVRD err:000",  # two blanks
    ],
)
def test_other_layouts_still_go_through_the_tolerant_reader(text: str) -> None:
    assert _APPENDIX_B_RE.fullmatch(text) is None
    fields = parse_receipt_text(text)
    assert fields["id"] == "1A2B"
    assert fields["stat"].upper() == "DELIVRD"


def test_receipt_dates_read_as_strptime_reads_them() -> None:
    rng = random.Random(5)
    zone = timezone(timedelta(hours=7))
    values = ["", "12345", "25011512", "2501151230x", "٢٥٠١١٥١٢٣٠", "2502301230", "2513011230", "2501152460"]
    values += ["".join(rng.choice("0123456789") for _ in range(rng.choice((10, 12)))) for _ in range(500)]
    for value in values:
        expected: datetime | None
        try:
            fmt = "%y%m%d%H%M%S" if len(value) == 12 else "%y%m%d%H%M"
            expected = datetime.strptime(value, fmt).replace(tzinfo=zone).astimezone(UTC)
            expected = expected if value.isascii() and value.isdigit() and len(value) in (10, 12) else None
        except ValueError:
            expected = None
        assert _receipt_time(value, zone) == expected, value


def test_in_the_appendix_b_layout_a_value_holding_a_field_name_stays_whole() -> None:
    """Read by its place in the layout, an id like ``ID:7`` is not taken for a second ``id`` field (the
    tolerant reader, which knows no places, would leave the id empty)."""
    text = "id:ID:7 sub:001 dlvrd:001 submit date:2501151230 done date:2501151231 stat:DELIVRD err:000"

    assert parse_receipt_text(text)["id"] == "ID:7"
