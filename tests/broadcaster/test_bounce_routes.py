"""What the bounce listener accepts (its routes from the settings) and how it keeps and reads a mail: the
recipient check behind the 550, the raw mail as JSON can hold it, the opt-out token in a subject."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.bounces.intake import raw_fields, token_in_subject
from broadcaster.bounces.routes import Kind, Route, Routes
from broadcaster.settings import Settings
from broadcaster.settings_sections import ProviderSettings
from channels.email.smtp import SmtpAdapter


def settings(**mail: str) -> Settings:
    providers = {
        "mail": ProviderSettings(channel="email", type="smtp", host="relay", **mail),
        "sms_main": ProviderSettings(channel="sms", type="smpp", host="smsc", bounce_domain="sms.vn"),
    }
    return Settings(providers=providers, base_dir=Path.cwd())


def test_only_the_bounce_addresses_and_the_opt_out_mailbox_are_ours() -> None:
    routes = Routes.from_settings(
        settings(bounce_domain="Bounce.Danang.gov.vn", unsubscribe_mailto="huy@bounce.danang.gov.vn")
    )
    bounce, opt_out = Route("mail", Kind.BOUNCE), Route("mail", Kind.UNSUBSCRIBE)
    assert routes.find("bounce+m42@bounce.danang.gov.vn") == bounce
    assert routes.find("<BOUNCE+M42@Bounce.Danang.GOV.VN>") == bounce
    assert routes.find("bounce@bounce.danang.gov.vn") == bounce
    assert routes.find("HUY@bounce.danang.gov.vn") == opt_out
    for stranger in (
        "bouncer@bounce.danang.gov.vn",
        "bounce+m42@danang.gov.vn",
        "bounce+m42@evil.bounce.danang.gov.vn",
        "huy+x@bounce.danang.gov.vn",
        "bounce+m1@sms.vn",  # an SMS provider's keys mean nothing here
        "no-at-sign",
        "",
    ):
        assert routes.find(stranger) is None, stranger


def test_a_custom_bounce_local_part_and_no_mailboxes() -> None:
    routes = Routes.from_settings(settings(bounce_domain="b.vn", bounce_local="tra-ve"))
    assert routes.find("tra-ve+m7@b.vn") == Route("mail", Kind.BOUNCE)
    assert routes.find("bounce+m7@b.vn") is None
    assert not Routes.from_settings(settings())


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("Subject: Thư báo lỗi\r\n\r\nx\r\n".encode(), "dsn"),
        (b"Subject: caf\xe9\r\n\r\nx\r\n", "dsn"),
        (b"Subject: a\x00b\r\n\r\nx\r\n", "dsn_base64"),
    ],
    ids=["utf-8", "latin-1", "nul"],
)
def test_the_raw_mail_is_kept_byte_for_byte_and_read_back_by_the_adapter(content: bytes, key: str) -> None:
    fields = raw_fields(content, "dsn")
    assert key in fields
    assert SmtpAdapter.parse_events(fields) == []  # not a report: read, no event
    text = fields.get("dsn")
    if text is not None:
        back = text.encode("latin-1") if fields.get("dsn_encoding") == "latin-1" else text.encode()
        assert back == content


def test_the_opt_out_token_comes_from_the_subject() -> None:
    assert token_in_subject(b"Subject: unsubscribe-12.AbCdEfGhIjKlMnOp\r\n\r\n") == "12.AbCdEfGhIjKlMnOp"
    assert token_in_subject(b"Subject: Re: UNSUBSCRIBE-12.x\r\n\r\n") == "12.x"  # verify_token judges it
    encoded = b"Subject: =?utf-8?q?unsubscribe-12=2Eabc?=\r\n\r\n"
    assert token_in_subject(encoded) == "12.abc"
    assert token_in_subject(b"Subject: H\xe1\xbb\xa7y \xc4\x91\xc4\x83ng k\xc3\xbd\r\n\r\n") is None
    assert token_in_subject(b"\r\n\r\nno headers") is None
