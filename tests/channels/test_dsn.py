"""RFC 3464 DSN parsing, with DSN bytes in the shapes Postfix and Exchange send."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.base import EventType
from channels.email.dsn import parse_dsn

# Postfix-style hard bounce: headers of the original returned as text/rfc822-headers (RET=HDRS).
POSTFIX_FAILED = b"""Return-Path: <>
Delivered-To: bounce+m4242@bounce.danang.gov.vn
From: MAILER-DAEMON@mx.danang.gov.vn (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounce+m4242@bounce.danang.gov.vn
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="8C2F1A0B6.1774851200/mx.danang.gov.vn"
Message-Id: <20260330061320.8C2F1A0B6@mx.danang.gov.vn>

This is a MIME-encapsulated message.

--8C2F1A0B6.1774851200/mx.danang.gov.vn
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<khongtontai@example.vn>: host mx.example.vn[203.0.113.5] said: 550 5.1.1
    <khongtontai@example.vn>: Recipient address rejected: User unknown in
    virtual mailbox table (in reply to RCPT TO command)

--8C2F1A0B6.1774851200/mx.danang.gov.vn
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.danang.gov.vn
X-Postfix-Queue-ID: 8C2F1A0B6
X-Postfix-Sender: rfc822; bounce+m4242@bounce.danang.gov.vn
Arrival-Date: Mon, 30 Mar 2026 13:13:18 +0700 (ICT)

Final-Recipient: rfc822; khongtontai@example.vn
Original-Recipient: rfc822;khongtontai@example.vn
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.vn
Diagnostic-Code: smtp; 550 5.1.1 <khongtontai@example.vn>: Recipient address
    rejected: User unknown in virtual mailbox table

--8C2F1A0B6.1774851200/mx.danang.gov.vn
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <bounce+m4242@bounce.danang.gov.vn>
Message-ID: <msg-4242.0f3a9c1d2e4b5a69@sokhcn.danang.gov.vn>
From: =?utf-8?b?U+G7nyBLSCZDTiDEkMOgIE7hurVuZw==?= <bantin@sokhcn.danang.gov.vn>
To: <khongtontai@example.vn>
Subject: =?utf-8?b?QuG6o24gdGluIHRow6FuZyAz?=

--8C2F1A0B6.1774851200/mx.danang.gov.vn--
""".replace(b"\n", b"\r\n")

# Delayed, then given up with 4.4.7, returned as message/rfc822 (Exchange-like), two recipient blocks.
EXCHANGE_TWO_BLOCKS = b"""From: postmaster@relay.example.vn
To: <bounce@bounce.danang.gov.vn>
Subject: Delivery Status Notification (Failure)
MIME-Version: 1.0
Content-Type: multipart/report; report-type="delivery-status"; boundary="b1"

--b1
Content-Type: text/plain; charset="utf-8"

Delivery has failed to these recipients or groups.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns;relay.example.vn
Received-From-MTA: dns;mx.danang.gov.vn
Arrival-Date: Tue, 31 Mar 2026 02:00:00 +0000

Final-Recipient: rfc822;hopthu.day@example.vn
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp;452 4.2.2 Mailbox full
Last-Attempt-Date: Tue, 31 Mar 2026 03:00:00 +0000

Final-Recipient: rfc822;het.han@example.vn
Action: failed
Status: 4.4.7
Diagnostic-Code: smtp;451 4.4.7 Message expired
Last-Attempt-Date: Fri, 03 Apr 2026 02:00:00 +0000

--b1
Content-Type: message/rfc822

Message-ID: <msg-77.aa11bb22cc33dd44@sokhcn.danang.gov.vn>
Subject: Test
From: bantin@sokhcn.danang.gov.vn

Body.

--b1--
""".replace(b"\n", b"\r\n")

# A success DSN (NOTIFY=SUCCESS) that quotes nothing of the original: only VERP and ENVID lead back.
DELIVERED_NO_ORIGINAL = """From: MAILER-DAEMON@mx.example.vn
To: bounce+m31337@bounce.danang.gov.vn
Subject: Successful Mail Delivery Report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="ok"

--ok
Content-Type: text/plain

Your message was delivered.

--ok
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.vn
Original-Envelope-Id: m31337

Final-Recipient: rfc822; nguoidan@example.vn
Action: delivered
Status: 2.0.0

--ok--
"""

NOT_A_DSN = b"From: a@example.vn\r\nTo: b@example.vn\r\nSubject: Re: hello\r\n\r\nThanks!\r\n"


def test_postfix_hard_bounce() -> None:
    [event] = parse_dsn(POSTFIX_FAILED)
    assert event.type is EventType.FAILED
    assert event.provider_id == "<msg-4242.0f3a9c1d2e4b5a69@sokhcn.danang.gov.vn>"
    assert event.status_text == "5.1.1"
    assert event.error_code == "550"
    assert event.recipient == "khongtontai@example.vn"
    assert event.occurred_at == datetime(2026, 3, 30, 6, 13, 18, tzinfo=UTC)
    assert event.raw["message_id"] == 4242
    assert event.raw["diagnostic_code"].startswith(
        "smtp; 550 5.1.1 <khongtontai@example.vn>: Recipient address"
    )
    assert event.raw["remote_mta"] == "mx.example.vn"
    assert event.raw["reporting_mta"] == "mx.danang.gov.vn"


def test_delayed_and_expired_blocks_with_original_message() -> None:
    delayed, expired = parse_dsn(EXCHANGE_TWO_BLOCKS)
    assert delayed.type is EventType.ACCEPTED  # still trying (RFC 3464 §2.3.3)
    assert delayed.status_text == "4.2.2"
    assert delayed.recipient == "hopthu.day@example.vn"
    assert delayed.occurred_at == datetime(2026, 3, 31, 3, 0, tzinfo=UTC)
    assert expired.type is EventType.EXPIRED  # "failed" with a 4.x.x status: the MTA gave up
    assert expired.error_code == "451"
    for event in (delayed, expired):
        assert event.provider_id == "<msg-77.aa11bb22cc33dd44@sokhcn.danang.gov.vn>"
        assert event.raw["message_id"] == 77  # the To: carries no VERP id, the Message-ID does


def test_delivered_found_through_verp_and_envid_only() -> None:
    [event] = parse_dsn(DELIVERED_NO_ORIGINAL)
    assert event.type is EventType.DELIVERED
    assert event.provider_id is None
    assert event.raw["message_id"] == 31337
    assert event.raw["original_envelope_id"] == "m31337"
    assert event.status_text == "2.0.0"


def test_the_envelope_recipient_wins_over_headers() -> None:
    [event] = parse_dsn(POSTFIX_FAILED, envelope_recipient="bounce+m999@bounce.danang.gov.vn")
    assert event.raw["message_id"] == 999


def test_not_a_dsn_gives_no_events() -> None:
    assert parse_dsn(NOT_A_DSN) == []
    assert parse_dsn(b"") == []


@pytest.mark.parametrize(
    ("action", "status", "invalid"),
    [
        ("failed", "5.1.1", True),  # bad mailbox
        ("failed", "5.1.10", True),  # null MX
        ("failed", "5.2.1", True),  # mailbox disabled
        ("failed", "5.01.001", True),  # the same code with leading zeros (RFC 3463 §2)
        ("failed", "5.2.2", False),  # mailbox full: the address is good
        ("failed", "5.7.1", False),  # policy: refused for what we sent, not for who
        ("failed", "5.0.0", False),
        ("failed", "4.4.7", False),  # expired
        ("delayed", "5.1.1", False),  # not final
    ],
)
def test_only_a_final_address_level_failure_is_a_hard_bounce(action: str, status: str, invalid: bool) -> None:
    dsn = POSTFIX_FAILED.replace(b"Status: 5.1.1", f"Status: {status}".encode()).replace(
        b"Action: failed", f"Action: {action}".encode()
    )
    [event] = parse_dsn(dsn)
    assert event.status_text == status
    assert event.address_invalid is invalid
