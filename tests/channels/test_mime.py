"""MIME building: parse round trips, RFC 2047 headers, encodings, line limits and skeleton reuse."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from channels.base import OutboundMessage
from channels.email.mime import (
    MimeBuilder,
    encode_body,
    encode_header_value,
    message_id_from_header,
    message_id_from_verp,
    verp_sender,
)

AGENCY = "Sở Khoa học và Công nghệ Đà Nẵng"
HTML = "<p>Kính gửi ông Nguyễn Văn Ánh, thông báo về chuyển đổi số thành phố Đà Nẵng năm 2026.</p>\n" * 60


def make_builder(**overrides: Any) -> MimeBuilder:
    settings: dict[str, Any] = {
        "from_address": "bantin@sokhcn.danang.gov.vn",
        "from_name": AGENCY,
        "unsubscribe_base_url": "https://bantin.danang.gov.vn/",
        "unsubscribe_mailto": "huy-dang-ky@danang.gov.vn",
    }
    settings.update(overrides)
    return MimeBuilder(**settings)


def make_message(**overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "message_id": 12345,
        "address": "anh.nguyen@example.vn",
        "body": "Kính gửi ông Ánh,\n\nNội dung bản tin tháng 3/2026.\n",
        "subject": "Bản tin chuyển đổi số tháng 3/2026 gửi ông Nguyễn Văn Ánh",
        "html": HTML,
        "campaign_key": "III.9-v1",
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(part: object) -> str:
    """Decoded text of a part with line breaks as "\\n" (the wire form uses canonical CRLF)."""
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def assert_wire_clean(data: bytes) -> None:
    assert data.isascii(), "the message must be 7-bit clean"
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF"
    assert b"\r" not in data.replace(b"\r\n", b""), "bare CR"
    assert max(len(line) for line in data.split(b"\r\n")) <= 998  # RFC 5322 §2.1.1


def test_round_trip_of_vietnamese_headers_and_bodies() -> None:
    built = make_builder().build(make_message())
    parsed = parse(built.data)
    assert_wire_clean(built.data)
    assert parsed["Subject"] == "Bản tin chuyển đổi số tháng 3/2026 gửi ông Nguyễn Văn Ánh"
    sender = parsed["From"].addresses[0]
    assert sender.display_name == AGENCY
    assert sender.addr_spec == "bantin@sokhcn.danang.gov.vn"
    assert parsed["To"].addresses[0].addr_spec == "anh.nguyen@example.vn"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Broadcaster-Campaign"] == "III.9-v1"
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert text_of(parsed.get_body(("plain",))) == "Kính gửi ông Ánh,\n\nNội dung bản tin tháng 3/2026.\n"
    assert text_of(parsed.get_body(("html",))) == HTML
    assert not parsed.defects
    assert all(not p.defects for p in parsed.walk())


@pytest.mark.parametrize(
    "subject",
    [
        "Thông báo",
        "Plain ASCII subject",
        "Looks like =?utf-8?q?an_encoded_word?= but is not",
        "Ưu tiên: lịch tiếp công dân của " + AGENCY + " — tuần 12, năm 2026 (bản cập nhật đầy đủ)" * 3,
        "Emoji 📢 và dấu: ệ ừ ỡ",
        "",
    ],
)
def test_subject_rfc2047_round_trip(subject: str) -> None:
    built = make_builder().build(make_message(subject=subject))
    assert_wire_clean(built.data)
    assert parse(built.data)["Subject"] == subject
    header_lines = built.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 78 for line in header_lines if b"=?utf-8?b?" in line)  # RFC 5322 §2.1.1 SHOULD


def test_header_injection_through_a_personalised_subject_is_neutralised() -> None:
    built = make_builder().build(make_message(subject="Chào\r\nBcc: victim@example.vn"))
    parsed = parse(built.data)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Chào Bcc: victim@example.vn"


@pytest.mark.parametrize(
    ("name", "expected"),
    [(AGENCY, AGENCY), ("Ban Tin", "Ban Tin"), ('So "KH&CN", Da Nang', 'So "KH&CN", Da Nang'), (None, "")],
)
def test_from_display_name_round_trip(name: str | None, expected: str) -> None:
    built = make_builder(from_name=name).build(make_message())
    sender = parse(built.data)["From"].addresses[0]
    assert sender.display_name == expected
    assert sender.addr_spec == "bantin@sokhcn.danang.gov.vn"


@pytest.mark.parametrize(
    ("text", "cte"),
    [
        ("Plain ASCII body.\n.\nA line that is only a dot, above.\n", "7bit"),
        ("x" * 2000 + "\n", "quoted-printable"),  # ASCII but longer than 998 octets
        ("Mostly ASCII text with one word in Vietnamese: Đà Nẵng. " * 20, "quoted-printable"),
        ("Thông báo về việc triển khai chuyển đổi số tại các phường, xã. " * 40, "base64"),
        ("Một dòng rất dài không xuống dòng " * 100, "base64"),
    ],
)
def test_body_encodings_decode_back_and_stay_within_limits(text: str, cte: str) -> None:
    chosen, _ = encode_body(text)
    assert chosen == cte
    built = make_builder().build(make_message(body=text, html=None))
    assert_wire_clean(built.data)
    parsed = parse(built.data)
    assert parsed.get_content_type() == "text/plain"
    assert parsed["Content-Transfer-Encoding"] == cte
    # 7bit and QP end on a line break (the CRLF before a boundary belongs to the delimiter, RFC 2046 §5.1.1).
    assert text_of(parsed) in (text, text + "\n")


def test_body_is_normalised_to_nfc() -> None:
    decomposed = "Đà Nẵng".replace("à", "a\u0300")
    built = make_builder().build(make_message(body=decomposed, html=None))
    assert text_of(parse(built.data)).rstrip("\n") == "Đà Nẵng"


def test_a_7bit_body_containing_the_boundary_is_encoded_instead() -> None:
    builder = make_builder()
    boundary = builder.template_for("III.9-v1").boundary.decode()
    body = f"Try to break it:\n--{boundary}\nContent-Type: text/html\n"
    built = builder.build(make_message(body=body))
    parsed = parse(built.data)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert text_of(parsed.get_body(("plain",))) == body


def _structure(data: bytes) -> bytes:
    """The message with the per-recipient header lines removed."""
    head, _, body = data.partition(b"\r\n\r\n")
    personal = (b"Date:", b"Message-ID:", b"To:", b"Subject:", b" =?utf-8?b?", b"List-Unsubscribe")
    lines = [line for line in head.split(b"\r\n") if not line.startswith(personal)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def test_skeleton_reuse_gives_byte_identical_structure() -> None:
    builder = make_builder()
    first = builder.build(make_message(message_id=1, address="a@example.vn", subject="Chào anh A"))
    second = builder.build(make_message(message_id=2, address="b@example.vn", subject="Chào chị B"))
    assert builder.template_for("III.9-v1") is builder.template_for("III.9-v1")
    assert first.data != second.data
    assert _structure(first.data) == _structure(second.data)
    other = builder.build(make_message(message_id=3, campaign_key="III.9-v2"))
    assert builder.template_for("III.9-v2").boundary != builder.template_for("III.9-v1").boundary
    assert _structure(other.data) != _structure(first.data)


def test_date_is_the_given_aware_utc_time() -> None:
    when = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    parsed = parse(make_builder().build(make_message(), now=when).data)
    assert parsed["Date"].datetime == when


def test_message_id_carries_the_outbox_id() -> None:
    built = make_builder().build(make_message(message_id=987654))
    parsed = parse(built.data)
    assert parsed["Message-ID"] == built.message_id_header
    assert re.fullmatch(r"<msg-987654\.[0-9a-f]{16}@sokhcn\.danang\.gov\.vn>", built.message_id_header)
    assert message_id_from_header(built.message_id_header) == 987654
    assert message_id_from_header("<CAF=abc@mail.gmail.com>") is None
    assert message_id_from_header(None) is None
    again = make_builder().build(make_message(message_id=987654))
    assert again.message_id_header != built.message_id_header  # the random part differs per build


def test_verp_round_trip() -> None:
    address = verp_sender(bounce_local="bounce", domain="bounce.danang.gov.vn", message_id=12345)
    assert address == "bounce+m12345@bounce.danang.gov.vn"
    assert message_id_from_verp(address) == 12345
    assert message_id_from_verp(f"<{address.upper()}>") == 12345
    assert message_id_from_verp("prvs=1234abcd=bounce+m77@bounce.danang.gov.vn") == 77  # BATV-signed
    assert message_id_from_verp("bounce@bounce.danang.gov.vn") is None
    assert message_id_from_verp(None) is None


def test_list_unsubscribe_only_when_allowed() -> None:
    builder = make_builder()
    options = {"unsubscribe_token": "tok-123"}
    allowed = parse(builder.build(make_message(allow_unsubscribe=True, options=options)).data)
    assert allowed["List-Unsubscribe"] == (
        "<https://bantin.danang.gov.vn/u/tok-123>, <mailto:huy-dang-ky@danang.gov.vn?subject=unsubscribe-tok-123>"
    )
    assert allowed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    denied = parse(
        builder.build(
            make_message(
                allow_unsubscribe=False, options=options, headers={"List-Unsubscribe": "<https://x/u/1>"}
            )
        ).data
    )
    assert denied["List-Unsubscribe"] is None
    assert denied["List-Unsubscribe-Post"] is None

    no_uri = parse(builder.build(make_message(allow_unsubscribe=True)).data)  # allowed but no token or URL
    assert no_uri["List-Unsubscribe"] is None


def test_list_unsubscribe_from_headers_and_mailto_only() -> None:
    builder = make_builder(unsubscribe_base_url=None)
    given = parse(
        builder.build(
            make_message(allow_unsubscribe=True, headers={"List-Unsubscribe": "<https://x.vn/u/9>"})
        ).data
    )
    assert given["List-Unsubscribe"] == "<https://x.vn/u/9>"
    assert given["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mailto_only = parse(
        builder.build(make_message(allow_unsubscribe=True, options={"unsubscribe_token": "t"})).data
    )
    assert mailto_only["List-Unsubscribe"] == "<mailto:huy-dang-ky@danang.gov.vn?subject=unsubscribe-t>"
    assert mailto_only["List-Unsubscribe-Post"] is None  # RFC 8058 §3.1: one-click needs an https URI


def test_extra_headers_pass_but_cannot_override_ours() -> None:
    headers = {
        "X-Campaign-Plan": "Kế hoạch 143/KH-UBND",
        "From": "evil@example.com",
        "Content-Type": "text/x",
    }
    parsed = parse(make_builder().build(make_message(headers=headers)).data)
    assert parsed["X-Campaign-Plan"] == "Kế hoạch 143/KH-UBND"
    assert parsed["From"].addresses[0].addr_spec == "bantin@sokhcn.danang.gov.vn"
    assert parsed.get_content_type() == "multipart/alternative"
    with pytest.raises(ValueError, match="header name"):
        make_builder().build(make_message(headers={"Bad Name": "x"}))


def test_auto_submitted_can_be_switched_off() -> None:
    assert parse(make_builder(auto_submitted=False).build(make_message()).data)["Auto-Submitted"] is None


def test_addresses_idna_and_smtputf8() -> None:
    built = make_builder().build(make_message(address="dan@đànẵng.vn"))
    local, _, domain = built.envelope_recipient.partition("@")
    assert local == "dan"
    assert domain.startswith("xn--")
    assert domain.endswith(".vn")
    assert parse(built.data)["To"].addresses[0].addr_spec == built.envelope_recipient
    with pytest.raises(ValueError, match="SMTPUTF8"):
        make_builder().build(make_message(address="nguyễn@example.vn"))
    with pytest.raises(ValueError, match="not a plain e-mail address"):
        make_builder().build(make_message(address="a@b.vn>\r\nRCPT TO:<c@d.vn"))


def test_encode_header_value_folds_long_words() -> None:
    line = encode_header_value("Subject", "Đà Nẵng " * 30)
    assert line.endswith(b"\r\n")
    assert all(len(part) <= 78 for part in line.rstrip(b"\r\n").split(b"\r\n"))
