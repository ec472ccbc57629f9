"""The bounce listener end to end: DSNs and mailto opt-outs sent by a real SMTP client (aiosmtplib) to the
listener on a free port, stored before the 250, applied through the e-mail adapter's parser, and listed.

The DSNs are built by ``test_bounces.bounce`` from the mails the sandbox relay received (their VERP envelope
sender and Message-ID, what a real MTA hands back)."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import func, select

from broadcaster.bounces.intake import REFUSED_FORGED, Intake
from broadcaster.bounces.listener import BounceListener, listener_for
from broadcaster.bounces.routes import Routes
from broadcaster.db.engine import make_engine, session_factory
from broadcaster.db.models import AuditEntry, DeliveryEventRow, InboundRecord
from broadcaster.masking import UNMASK_ACTION
from broadcaster.suppressing import SUPPRESS_ACTION
from broadcaster.vocabulary import MessageStatus
from channels.masking import mask_email
from consent import ledger
from consent.models import ConsentEvent, Suppression
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Started, start_cli
from tests.broadcaster.delivery.test_bounces import FAILED, bounce, mail_three
from tests.broadcaster.delivery.test_email_opt_out import email_campaign, one_click_link
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens
from tests.broadcaster.test_cli import Cli
from tests.conftest import free_port
from tests.peers.polling import wait_until

MAILER_DAEMON = ""  # DSNs come from the null sender (RFC 3464 §2, RFC 5321 §4.5.5)
OPT_OUT_MAILBOX = "huy-dang-ky@skhcn.danang.gov.vn"


def deliver(port: int, content: str | bytes, *, to: list[str], sender: str = MAILER_DAEMON) -> str:
    """Send ``content`` with aiosmtplib, as the bounce domain's MX would receive it; returns the reply."""

    async def send() -> str:
        # SMTP.sendmail, not aiosmtplib.send: that one refuses the null sender DSNs come from.
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10) as client:
            raw = content.encode("utf-8") if isinstance(content, str) else content  # 8-bit, as MTAs send
            _errors, reply = await client.sendmail(sender, to, raw)
        return reply

    return asyncio.run(send())


def count(pipeline: Pipeline, model: type) -> int:
    with pipeline.context.readers() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def listener(pipeline: Pipeline) -> Iterator[BounceListener]:
    with listener_for(pipeline.context, port=free_port()) as started:
        yield started


def test_a_hard_bounce_marks_the_mail_failed_and_suppresses_the_address_once(
    pipeline: Pipeline, listener: BounceListener
) -> None:
    _campaign_id, run_id = mail_three(pipeline)
    bounced, *others = pipeline.messages(run_id)
    record = bounce(pipeline, bounced.address, evidence="headers", outcome=FAILED)
    verp = next(m.mail_from for m in pipeline.smtp.received if m.rcpt_tos == (bounced.address,))

    assert deliver(listener.port, record["dsn"], to=[verp]).startswith("2.0.0 OK: stored")

    by_id = {m.id: m for m in pipeline.messages(run_id)}
    assert by_id[bounced.id].status == MessageStatus.PERMANENT_FAILURE
    assert {by_id[m.id].status for m in others} == {MessageStatus.SENT}
    with pipeline.context.readers() as session:
        [stored] = session.scalars(select(InboundRecord))
        [suppressed] = session.scalars(select(Suppression))
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == SUPPRESS_ACTION))
    assert (stored.provider, stored.channel, stored.outcome) == ("mail", "email", "failed")
    assert stored.payload["envelope_to"] == verp
    assert stored.payload["envelope_from"] == ""
    assert stored.payload["peer"].startswith("127.0.0.1:")
    assert stored.payload["dsn"].replace("\r\n", "\n") == record["dsn"].replace("\r\n", "\n")
    assert suppressed.address == bounced.address.lower()
    assert entry.subject_id == mask_email(bounced.address.lower())

    # The same DSN again (an MTA that did not see our 250): kept raw, but nothing more changes.
    deliver(listener.port, record["dsn"], to=[verp])
    with pipeline.context.readers() as session:
        outcomes = [r.outcome for r in session.scalars(select(InboundRecord).order_by(InboundRecord.id))]
    assert outcomes == ["failed", "duplicate"]
    assert count(pipeline, DeliveryEventRow) == 1
    assert count(pipeline, Suppression) == 1
    with pipeline.context.readers() as session:
        assert session.scalar(select(func.count()).where(AuditEntry.action == SUPPRESS_ACTION)) == 1


def test_bounces_that_quote_no_message_id_each_move_their_own_mail(
    pipeline: Pipeline, listener: BounceListener
) -> None:
    _campaign_id, run_id = mail_three(pipeline)
    first, second, _third = pipeline.messages(run_id)
    for message in (first, second):
        record = bounce(pipeline, message.address, evidence="envelope", outcome=FAILED)
        deliver(listener.port, record["dsn"], to=[record["envelope_to"]])

    statuses = {m.id: m.status for m in pipeline.messages(run_id)}
    assert (statuses[first.id], statuses[second.id]) == (MessageStatus.PERMANENT_FAILURE,) * 2
    assert count(pipeline, DeliveryEventRow) == 2
    assert count(pipeline, Suppression) == 2


@pytest.mark.parametrize(
    ("odd_header", "stored_as"), [(b"X-Note: caf\xe9\r\n", "dsn"), (b"X-Note: a\x00b\r\n", "dsn_base64")]
)
def test_a_bounce_that_is_not_utf8_is_kept_byte_for_byte_and_applied(
    pipeline: Pipeline, listener: BounceListener, odd_header: bytes, stored_as: str
) -> None:
    _campaign_id, run_id = mail_three(pipeline)
    bounced, *_ = pipeline.messages(run_id)
    record = bounce(pipeline, bounced.address, evidence="envelope", outcome=FAILED)
    returned = b"Content-Type: text/rfc822-headers\r\n\r\n"
    content = record["dsn"].encode("utf-8").replace(returned, returned + odd_header)

    deliver(listener.port, content, to=[record["envelope_to"]])

    assert {m.id: m.status for m in pipeline.messages(run_id)}[bounced.id] == MessageStatus.PERMANENT_FAILURE
    with pipeline.context.readers() as session:
        [stored] = session.scalars(select(InboundRecord))
    assert stored_as in stored.payload
    if stored_as == "dsn":  # Latin-1 text: the address stays findable for a data subject's erasure
        assert stored.payload["dsn_encoding"] == "latin-1"
        assert bounced.address in stored.payload["dsn"]
        assert stored.payload["dsn"].encode("latin-1").replace(b"\r\n", b"\n") == content.replace(
            b"\r\n", b"\n"
        )


def test_a_bounce_for_an_unknown_message_is_kept_and_listed(
    pipeline: Pipeline, listener: BounceListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    _campaign_id, run_id = mail_three(pipeline)
    known, *_ = pipeline.messages(run_id)
    record = bounce(pipeline, known.address, evidence="envelope", outcome=FAILED)
    stranger = "bounce+m987654@skhcn.danang.gov.vn"  # a VERP id no message of ours has

    deliver(listener.port, record["dsn"], to=[stranger])
    deliver(listener.port, record["dsn"], to=[record["envelope_to"]])

    assert {m.id: m.status for m in pipeline.messages(run_id)}[known.id] == MessageStatus.PERMANENT_FAILURE
    with pipeline.context.readers() as session:
        records = list(session.scalars(select(InboundRecord).order_by(InboundRecord.id)))
    assert [(r.outcome, r.processed_at is not None) for r in records] == [
        ("unmatched", True),
        ("failed", True),
    ]

    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "200")
    cli = Cli(monkeypatch)
    [unmatched] = cli.json("bounces", "list", "--unmatched")
    assert (unmatched["id"], unmatched["state"], unmatched["to"]) == (records[0].id, "unmatched", stranger)
    assert unmatched["messages"] == []
    assert unmatched["recipients"] == [mask_email(known.address)]  # masked by default
    assert unmatched["recipients"] != [known.address]
    everything = cli.json("bounces", "list")
    assert [(r["state"], r["messages"]) for r in everything] == [("matched", [known.id]), ("unmatched", [])]
    full = cli.json("bounces", "list", "--unmasked")
    assert full[1]["recipients"] == [known.address]
    cli("bounces", "list", "--unmasked", user=EDITOR, expect=1)  # admins only
    with pipeline.context.readers() as session:
        [seen] = session.scalars(select(AuditEntry).where(AuditEntry.action == UNMASK_ACTION))
    assert (seen.subject_type, seen.details["shown"]) == ("bounces", 2)
    table = cli("bounces", "list", "--unmatched").stdout
    assert "không khớp thư nào" in table


def test_other_recipients_are_refused_and_nothing_is_stored(
    pipeline: Pipeline, listener: BounceListener
) -> None:
    for stranger in ("thongbao@skhcn.danang.gov.vn", "bounce+m1@example.vn", "bouncer@skhcn.danang.gov.vn"):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            deliver(listener.port, "Subject: x\r\n\r\nx\r\n", to=[stranger])
        assert [r.code for r in refused.value.recipients] == [550]
    assert count(pipeline, InboundRecord) == 0


def test_a_mail_over_the_size_limit_is_refused(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(settings_sections={"bounces": {"max_message_bytes": 20_000}})
    with listener_for(pipeline.context, port=free_port()) as listener:
        big = "Subject: x\r\n\r\n" + ("x" * 70 + "\r\n") * 400
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            deliver(listener.port, big, to=["bounce+m1@skhcn.danang.gov.vn"])
        assert refused.value.code == 552
        deliver(listener.port, "Subject: x\r\n\r\nsmall\r\n", to=["bounce+m1@skhcn.danang.gov.vn"])
    with pipeline.context.readers() as session:
        assert [r.outcome for r in session.scalars(select(InboundRecord))] == ["empty"]


def test_database_down_answers_451_and_the_retry_is_stored(
    pipeline: Pipeline, listener: BounceListener, tmp_path: Path
) -> None:
    _campaign_id, run_id = mail_three(pipeline)
    bounced, *_ = pipeline.messages(run_id)
    record = bounce(pipeline, bounced.address, evidence="envelope", outcome=FAILED)
    settings = pipeline.context.settings
    unreachable = session_factory(make_engine(f"sqlite:///{tmp_path}/no-such-folder/broadcaster.sqlite3"))
    down = BounceListener(
        Intake(
            unreachable, routes=Routes.from_settings(settings), clock=pipeline.clock, unsubscribe_secret="s"
        ),
        routes=Routes.from_settings(settings),
        host="127.0.0.1",
        port=free_port(),
        max_message_bytes=settings.bounces.max_message_bytes,
    )
    with down, pytest.raises(aiosmtplib.SMTPDataError) as refused:
        deliver(down.port, record["dsn"], to=[record["envelope_to"]])
    assert refused.value.code == 451  # the sending MTA keeps the mail and tries again later
    assert count(pipeline, InboundRecord) == 0

    deliver(listener.port, record["dsn"], to=[record["envelope_to"]])  # its retry, once the database is back
    assert {m.id: m.status for m in pipeline.messages(run_id)}[bounced.id] == MessageStatus.PERMANENT_FAILURE


def test_a_mailto_opt_out_withdraws_once_and_a_forged_one_is_recorded_as_refused(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline(mail={"unsubscribe_mailto": OPT_OUT_MAILBOX})
    pipeline.add_contacts(citizens(1))
    pipeline.send(email_campaign(pipeline, purpose="public_information"))
    assert pipeline.smtp.wait_for_count(1)
    mail = pipeline.smtp.received[0].message()
    token, citizen = one_click_link(mail).rsplit("/", 1)[1], str(mail["To"])
    message_id, tag = token.split(".")

    port = free_port()

    def opt_out(subject: str) -> str:
        content = f"From: <{citizen}>\r\nTo: <{OPT_OUT_MAILBOX}>\r\nSubject: {subject}\r\n\r\n\r\n"
        return deliver(port, content, to=[OPT_OUT_MAILBOX], sender=citizen)

    with listener_for(pipeline.context, port=port):
        assert opt_out(f"unsubscribe-{token}").startswith("2.0.0")
        opt_out(f"unsubscribe-{token}")  # a client that sends it twice
        assert opt_out(f"unsubscribe-{int(message_id) + 1}.{tag}").startswith("2.0.0")  # no backscatter
        opt_out("Hủy đăng ký giúp tôi")

    with pipeline.context.readers() as session:
        assert ledger.current(session, "email", citizen, "public_information") is False
        [event] = session.scalars(select(ConsentEvent))
        outcomes = [r.outcome for r in session.scalars(select(InboundRecord).order_by(InboundRecord.id))]
    assert (event.action, event.source) == ("withdraw", "email_link")
    assert outcomes == [
        f"withdrawn: consent event {event.id}",
        f"withdrawn: consent event {event.id}",
        REFUSED_FORGED,
        "refused: no unsubscribe-<token> subject",
    ]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _serve_and_bounce(pipeline: Pipeline, processes: Started, *command: str, port: int) -> str:
    """Start ``broadcaster <command>``, send it a hard bounce, stop it with SIGTERM; returns its output."""
    _campaign_id, run_id = mail_three(pipeline)
    bounced, *_ = pipeline.messages(run_id)
    record = bounce(pipeline, bounced.address, evidence="envelope", outcome=FAILED)
    server = start_cli(pipeline, processes, *command, login=EDITOR, log="bounces.log")
    log = pipeline.directory / "bounces.log"
    wait_until(lambda: server.poll() is not None or _listening(port), what="the listener", timeout=60)
    assert server.poll() is None, log.read_text(encoding="utf-8")

    deliver(port, record["dsn"], to=[record["envelope_to"]])
    assert {m.id: m.status for m in pipeline.messages(run_id)}[bounced.id] == MessageStatus.PERMANENT_FAILURE
    assert count(pipeline, Suppression) == 1

    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=60) == 0
    assert not _listening(port)
    return log.read_text(encoding="utf-8")


def test_broadcaster_bounces_runs_the_listener_in_the_foreground(
    pipeline: Pipeline, processes: Started
) -> None:
    port = free_port()
    output = _serve_and_bounce(pipeline, processes, "bounces", "--port", str(port), port=port)
    assert f"Receiving mail on 127.0.0.1:{port} for: bounce+*@skhcn.danang.gov.vn (mail)" in " ".join(
        output.split()
    )
    assert "The mail listener stopped." in output


@pytest.mark.slow
def test_broadcaster_run_starts_the_listener_when_configured(
    make_pipeline: PipelineFactory, processes: Started
) -> None:
    port = free_port()
    pipeline = make_pipeline(settings_sections={"bounces": {"port": port, "start_with_run": True}})
    output = _serve_and_bounce(pipeline, processes, "run", port=port)
    assert f"Receiving bounces on 127.0.0.1:{port}." in output


def test_a_port_in_use_is_reported_with_the_setting_to_change(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "200")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = Cli(monkeypatch)("bounces", "--port", str(port), expect=1)
    said = " ".join((result.stdout + result.stderr).split())
    assert f"cannot open 127.0.0.1:{port} ([bounces] host, port)" in said
