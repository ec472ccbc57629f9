"""The SMTP adapter against a real aiosmtpd server on 127.0.0.1, and the reply classification table row by row."""

from __future__ import annotations

import email
import email.policy
import threading
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from channels.base import Adapter, EventType, OutboundMessage, SendOutcome, SendResult
from channels.email.mime import message_id_from_header, message_id_from_verp
from channels.email.smtp import SmtpAdapter
from channels.email.smtp_errors import Stage, classify_exception, classify_reply, parse_enhanced_code
from channels.errors import (
    ChannelError,
    ConfigurationError,
    ConnectionLost,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)
from channels.sandbox.smtp import SandboxSmtpServer, SmtpBehaviour
from tests.channels.test_dsn import POSTFIX_FAILED
from tests.peers.smtp import running_smtp_sandbox

AGENCY = "Sở Khoa học và Công nghệ Đà Nẵng"

# -- classification table (smtp_errors.py docstring), row by row ----------------------------------------


@pytest.mark.parametrize(
    ("stage", "code", "text", "expected"),
    [
        (Stage.DATA, 250, "2.0.0 OK", None),
        (Stage.DATA, 354, "Go ahead", None),
        (Stage.RCPT, 452, "4.2.2 Mailbox full", TransientError),
        (Stage.RCPT, 552, "5.2.2 Mailbox full", TransientError),
        (Stage.DATA, 552, "5.2.2 Over quota", TransientError),
        (Stage.RCPT, 552, "Requested mail action aborted: exceeded storage allocation", TransientError),
        (Stage.MAIL, 421, "4.3.2 Service shutting down", Throttled),
        (Stage.MAIL, 421, "Too many connections", Throttled),
        (Stage.RCPT, 450, "4.7.1 Greylisted, try again later", Throttled),
        (Stage.MAIL, 451, "4.3.0 Temporary system problem", TransientError),
        (Stage.RCPT, 450, "4.1.1 Recipient address verification pending", TransientError),
        (Stage.RCPT, 550, "5.7.1 Relaying denied", ConfigurationError),
        (
            Stage.RCPT,
            550,
            "5.7.515 Access denied, sending domain does not meet authentication",
            ConfigurationError,
        ),
        (Stage.RCPT, 501, "5.5.2 Syntax error", ConfigurationError),
        (Stage.CONNECT, 554, "No SMTP service here", ConfigurationError),
        (Stage.CONNECT, 535, "5.7.8 Authentication credentials invalid", ConfigurationError),
        (Stage.MAIL, 553, "5.1.8 Sender address rejected: domain not found", ConfigurationError),
        (Stage.MAIL, 550, "Sender rejected", ConfigurationError),
        (Stage.DATA, 554, "5.6.0 Message content rejected", ConfigurationError),
        (Stage.DATA, 550, "5.1.1 User unknown", ConfigurationError),  # 5xx to DATA: the rule says config
        (
            Stage.RCPT,
            550,
            "5.1.1 <x@example.vn>: Recipient address rejected: User unknown",
            RecipientRejected,
        ),
        (Stage.RCPT, 550, "5.1.10 Recipient domain publishes a null MX", RecipientRejected),
        (Stage.RCPT, 550, "5.2.1 Mailbox disabled", RecipientRejected),
        (Stage.RCPT, 551, "User not local", RecipientRejected),
        (Stage.RCPT, 553, "Mailbox name not allowed", RecipientRejected),
        (Stage.RCPT, 550, "No such user here", RecipientRejected),
        (Stage.RCPT, 550, "5.1.2 Bad destination system", PermanentError),
        (Stage.RCPT, 554, "5.1.1 user unknown", PermanentError),  # 554 is not an address-level reply code
        (Stage.RCPT, 550, "4.1.1 class mismatch is ignored", RecipientRejected),  # RFC 2034 §4
        (Stage.MAIL, -1, "Malformed SMTP response line", TransientError),
    ],
)
def test_reply_classification(
    stage: Stage, code: int, text: str, expected: type[ChannelError] | None
) -> None:
    error = classify_reply(stage=stage, code=code, text=text)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error is not None
        assert error.code is not None
        assert error.code.startswith(str(code))
        assert error.detail == text


def test_unexpected_reply_after_the_body_is_unknown() -> None:
    assert type(classify_reply(stage=Stage.DATA, code=-1, text="garbage", after_body=True)) is OutcomeUnknown


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("5.1.1 user unknown", 550, "5.1.1"),
        ("5.7.515 access denied", 550, "5.7.515"),
        ("4.7.0 try later", 550, None),
        ("user unknown", 550, None),
        ("5.1.1234 too long", 550, None),
    ],
)
def test_parse_enhanced_code(text: str, code: int, expected: str | None) -> None:
    assert parse_enhanced_code(text, reply_code=code) == expected


@pytest.mark.parametrize(
    ("exc", "stage", "body_written", "expected"),
    [
        (aiosmtplib.SMTPServerDisconnected("lost"), Stage.MAIL, False, ConnectionLost),
        (aiosmtplib.SMTPServerDisconnected("lost"), Stage.DATA, False, ConnectionLost),
        (aiosmtplib.SMTPServerDisconnected("lost"), Stage.DATA, True, OutcomeUnknown),
        (aiosmtplib.SMTPReadTimeoutError("slow"), Stage.RCPT, False, ConnectionLost),
        (aiosmtplib.SMTPReadTimeoutError("slow"), Stage.DATA, True, OutcomeUnknown),
        (ConnectionRefusedError(111, "refused"), Stage.CONNECT, False, ConnectionLost),
        (aiosmtplib.SMTPConnectError("refused"), Stage.CONNECT, False, ConnectionLost),
        (aiosmtplib.SMTPConnectResponseError(554, "5.7.1 go away"), Stage.CONNECT, False, ConfigurationError),
        (aiosmtplib.SMTPConnectResponseError(421, "busy"), Stage.CONNECT, False, Throttled),
        (
            aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"),
            Stage.CONNECT,
            False,
            ConfigurationError,
        ),
        (
            aiosmtplib.SMTPSenderRefused(550, "5.7.1 not allowed", "a@b.vn"),
            Stage.MAIL,
            False,
            ConfigurationError,
        ),
        (
            aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", "a@b.vn"),
            Stage.RCPT,
            False,
            RecipientRejected,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(451, "4.3.0 later", "a@b.vn")]),
            Stage.RCPT,
            False,
            TransientError,
        ),
        (aiosmtplib.SMTPDataError(554, "5.6.0 rejected"), Stage.DATA, True, ConfigurationError),
        (aiosmtplib.SMTPNotSupported("STARTTLS not offered"), Stage.CONNECT, False, ConfigurationError),
    ],
)
def test_exception_classification(
    exc: BaseException, stage: Stage, body_written: bool, expected: type[ChannelError]
) -> None:
    assert type(classify_exception(exc, stage=stage, body_written=body_written)) is expected


# -- against a real server ----------------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[SandboxSmtpServer]:
    with running_smtp_sandbox() as server:
        yield server


def make_adapter(server: SandboxSmtpServer, **overrides: Any) -> SmtpAdapter:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "from_address": "bantin@sokhcn.danang.gov.vn",
        "from_name": AGENCY,
        "bounce_domain": "bounce.danang.gov.vn",
        "tls": "none",
        "connections": 4,
        "timeout": 5.0,
        "unsubscribe_base_url": "https://bantin.danang.gov.vn",
    }
    settings.update(overrides)
    return SmtpAdapter(**settings)


def make_message(i: int, **overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "message_id": 10_000 + i,
        "address": f"cong.dan{i}@example.vn",
        "subject": f"Bản tin tháng 3 gửi công dân số {i} — Đà Nẵng",
        "body": f"Kính gửi công dân số {i},\n.\nĐây là bản tin chuyển đổi số.\n",
        "html": f"<p>Kính gửi công dân số <b>{i}</b></p>\n" * 20,
        "campaign_key": "III.9-v1",
        "allow_unsubscribe": i % 2 == 0,
        "options": {"unsubscribe_token": f"tok{i}"},
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def send_all(adapter: SmtpAdapter, messages: list[OutboundMessage]) -> list[SendResult]:
    window = adapter.capabilities.window
    results: list[SendResult] = []
    for start in range(0, len(messages), window):
        results += adapter.send(messages[start : start + window])
    return results


def text_of(part: object) -> str:
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def errors_of(results: list[SendResult]) -> dict[int, type[ChannelError]]:
    return {r.message_id: type(r.error) for r in results if r.error is not None}


def test_the_adapter_meets_the_protocol(sandbox: SandboxSmtpServer) -> None:
    adapter = make_adapter(sandbox)
    assert isinstance(adapter, Adapter)
    assert adapter.capabilities.receipts is False
    assert "secret" not in repr(make_adapter(sandbox, username="u", password="secret"))


def test_500_messages_arrive_personalised_over_reused_connections(sandbox: SandboxSmtpServer) -> None:
    messages = [make_message(i) for i in range(500)]
    with make_adapter(sandbox, connections=4, max_messages_per_connection=1000) as adapter:
        results = send_all(adapter, messages)
        opened = adapter.connections_opened
    assert [r.message_id for r in results] == [m.message_id for m in messages]  # same order
    assert all(r.outcome is SendOutcome.SENT for r in results), errors_of(results)
    assert sandbox.wait_for_count(500)
    by_id: dict[int, tuple[Any, EmailMessage]] = {}
    for mail in sandbox.received:
        parsed = email.message_from_bytes(mail.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        outbox_id = message_id_from_header(parsed["Message-ID"])
        assert outbox_id is not None
        assert message_id_from_verp(mail.mail_from) == outbox_id  # VERP envelope sender decodes back
        by_id[outbox_id] = (mail, parsed)
    assert sorted(by_id) == [m.message_id for m in messages]
    for message, result in zip(messages, results, strict=True):
        mail, parsed = by_id[message.message_id]
        i = message.message_id - 10_000
        assert mail.rcpt_tos == (message.address,)
        assert parsed["Message-ID"] == result.provider_ids[0]
        assert parsed["Subject"] == message.subject
        assert parsed["From"].addresses[0].display_name == AGENCY
        assert parsed["To"].addresses[0].addr_spec == message.address
        assert text_of(parsed.get_body(("plain",))) == message.body  # incl. the "." line (dot-stuffing)
        assert text_of(parsed.get_body(("html",))) == message.html
        if i % 2 == 0:
            assert parsed["List-Unsubscribe"].startswith(f"<https://bantin.danang.gov.vn/u/tok{i}>")
            assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        else:
            assert parsed["List-Unsubscribe"] is None
            assert parsed["List-Unsubscribe-Post"] is None
    assert sandbox.connections_peak <= 4
    assert sandbox.connections_total == opened <= 4  # reused across all ten windows


def test_connections_are_renewed_after_max_messages(sandbox: SandboxSmtpServer) -> None:
    with make_adapter(sandbox, connections=2, max_messages_per_connection=10) as adapter:
        results = send_all(adapter, [make_message(i) for i in range(60)])
        opened = adapter.connections_opened
    assert all(r.outcome is SendOutcome.SENT for r in results)
    assert sandbox.wait_for(lambda s: s.connections_total == opened and s.connections_open == 0)
    # Which of the two connections takes the next mail is up to the scheduler, so the count of renewals
    # varies; the cap never does.
    per_connection = Counter(mail.peer for mail in sandbox.received)
    assert sum(per_connection.values()) == 60
    assert "" not in per_connection
    assert max(per_connection.values()) <= 10
    assert len(per_connection) == opened >= 6


def test_a_rejected_recipient_does_not_disturb_the_window(sandbox: SandboxSmtpServer) -> None:
    sandbox.behaviour = SmtpBehaviour(reject_recipients={"cong.dan3@example.vn"})
    with make_adapter(sandbox) as adapter:
        results = adapter.send([make_message(i) for i in range(10)])
    assert errors_of(results) == {10_003: RecipientRejected}
    rejected = results[3].error
    assert rejected is not None
    assert rejected.code == "550 5.1.1"
    assert sandbox.wait_for_count(9)
    assert "cong.dan3@example.vn" not in {r for mail in sandbox.received for r in mail.rcpt_tos}


def test_sender_refused_is_a_configuration_error(sandbox: SandboxSmtpServer) -> None:
    sandbox.behaviour = SmtpBehaviour(reject_senders={"*"})
    with make_adapter(sandbox) as adapter:
        results = adapter.send([make_message(i) for i in range(6)])
    assert set(errors_of(results).values()) == {ConfigurationError}
    assert len(errors_of(results)) == 6
    assert sandbox.received == []


def test_temporary_replies_are_transient_and_421_is_throttled(sandbox: SandboxSmtpServer) -> None:
    sandbox.behaviour = SmtpBehaviour(temporary_every=3)
    with make_adapter(sandbox, connections=1) as adapter:
        results = adapter.send([make_message(i) for i in range(9)])
        assert errors_of(results) == {10_002: TransientError, 10_005: TransientError, 10_008: TransientError}
        assert sandbox.wait_for_count(6)

        sandbox.behaviour = SmtpBehaviour(temporary_every=2, temporary_reply="421 4.7.0 Too many messages")
        sandbox.clear()
        results = adapter.send([make_message(i) for i in range(4)])
        # The MAIL counter of the server is global: it has seen 9 MAILs, so the 1st and 3rd here are even.
        assert errors_of(results) == {10_000: Throttled, 10_002: Throttled}
        assert sandbox.wait_for_count(2)
        assert adapter.connections_opened == 3  # 421 closes the channel, the adapter reopens it


def test_connection_lost_before_the_body_and_unknown_after_it(sandbox: SandboxSmtpServer) -> None:
    sandbox.behaviour = SmtpBehaviour(drop_at_recipients={"cong.dan1@example.vn"})
    with make_adapter(sandbox, connections=1) as adapter:
        results = adapter.send([make_message(i) for i in range(3)])
        assert errors_of(results) == {10_001: ConnectionLost}
        assert results[2].outcome is SendOutcome.SENT  # reconnected for the next one

        sandbox.behaviour = SmtpBehaviour(drop_after_data_every=2)
        sandbox.clear()
        results = adapter.send([make_message(i) for i in range(3)])
    assert errors_of(results) == {10_001: OutcomeUnknown}
    assert sandbox.wait_for_count(3)
    # The server has the "unknown" mail: resending it blindly would deliver it twice.
    assert [m.reply_dropped for m in sandbox.received] == [False, True, False]


def test_server_stopped_then_back(sandbox: SandboxSmtpServer) -> None:
    port = sandbox.port
    with make_adapter(sandbox, connections=2) as adapter:
        assert all(r.outcome is SendOutcome.SENT for r in adapter.send([make_message(i) for i in range(4)]))
        sandbox.stop()
        down = adapter.send([make_message(i) for i in range(4, 10)])
        assert set(errors_of(down).values()) == {ConnectionLost}
        assert len(down) == 6
        with running_smtp_sandbox(port=port) as again:
            back = adapter.send([make_message(i) for i in range(10, 14)])
            assert all(r.outcome is SendOutcome.SENT for r in back), errors_of(back)
            assert again.wait_for_count(4)


def test_unwritable_address_fails_without_reaching_the_server(sandbox: SandboxSmtpServer) -> None:
    with make_adapter(sandbox) as adapter:
        results = adapter.send([make_message(0, address="nguyễn@example.vn"), make_message(1)])
    assert errors_of(results) == {10_000: PermanentError}
    assert results[1].outcome is SendOutcome.SENT


def test_parse_events_reads_dsns(sandbox: SandboxSmtpServer) -> None:
    adapter = make_adapter(sandbox)
    [event] = adapter.parse_events({"dsn": POSTFIX_FAILED})
    assert event.type is EventType.FAILED
    assert event.raw["message_id"] == 4242
    assert (
        adapter.parse_events({"dsn": POSTFIX_FAILED.decode(), "envelope_to": "bounce+m5@x.vn"})[0].raw[
            "message_id"
        ]
        == 5
    )
    assert adapter.parse_events({}) == []


def test_invalid_settings_are_configuration_errors(sandbox: SandboxSmtpServer) -> None:
    with pytest.raises(ConfigurationError):
        make_adapter(sandbox, tls="ssl")
    with pytest.raises(ConfigurationError):
        make_adapter(sandbox, username="only-user")
    with pytest.raises(ConfigurationError):
        make_adapter(sandbox, from_address="not an address")


def test_on_handing_is_told_of_each_message_before_its_body_is_written(sandbox: SandboxSmtpServer) -> None:
    """The engine records which mails may be at the relay before their bodies go (issue 9, item 1)."""
    told: list[int] = []
    early: list[int] = []  # told after the relay already had it
    calls = 0

    def on_handing(ids: Any) -> Any:
        nonlocal calls
        calls += 1
        at_relay = {r for mail in sandbox.received for r in mail.rcpt_tos}
        early.extend(i for i in ids if f"cong.dan{i - 10_000}@example.vn" in at_relay)
        told.extend(ids)
        return ids

    messages = [make_message(i) for i in range(30)]
    adapter = make_adapter(sandbox, on_handing=on_handing)
    with adapter:
        results = adapter.send(messages)
    assert all(r.outcome is SendOutcome.SENT for r in results)
    assert sorted(set(told)) == [m.message_id for m in messages]
    assert early == []
    # Records run ahead of the connections: a few commits per window, not one per mail.
    assert calls <= len(messages) // adapter.record_ahead + adapter.connections + 1, calls


def test_each_message_is_recorded_once_though_records_run_ahead(sandbox: SandboxSmtpServer) -> None:
    """A connection that asks for a message while a record ahead of it is being committed waits for that
    record: the engine marks a message handed once, and would refuse to let it go a second time."""
    handed: set[int] = set()
    twice: list[int] = []

    def on_handing(ids: Any) -> list[int]:
        threading.Event().wait(0.03)  # a slow commit: connections run out of records meanwhile
        twice.extend(i for i in ids if i in handed)
        fresh = [i for i in ids if i not in handed]
        handed.update(ids)
        return fresh  # as claims.mark_handed: only what it marked now

    messages = [make_message(i) for i in range(60)]
    with make_adapter(sandbox, on_handing=on_handing) as adapter:
        results = adapter.send(messages)
    assert twice == []
    assert all(r.outcome is SendOutcome.SENT for r in results)
    assert sandbox.wait_for_count(len(messages))


def test_when_on_handing_fails_no_body_is_written(sandbox: SandboxSmtpServer) -> None:
    def on_handing(ids: Any) -> None:
        raise RuntimeError("database is locked")

    with make_adapter(sandbox, on_handing=on_handing) as adapter:
        results = adapter.send([make_message(i) for i in range(6)])
    assert all(isinstance(r.error, ConnectionLost) for r in results)  # safe to send again later
    assert sandbox.received == []
