"""The sandbox SMTP server, driven by the stdlib client (an independent peer for our own server)."""

from __future__ import annotations

import smtplib
import socket
import threading
from pathlib import Path

import pytest

from channels.sandbox.smtp import SmtpBehaviour, run_smtp_sandbox
from tests.conftest import free_port
from tests.peers.smtp import running_smtp_sandbox

MAIL = (
    b"Message-ID: <msg-4321.abcdef@danang.gov.vn>\r\n"
    b"From: bantin@danang.gov.vn\r\nTo: a@example.vn\r\nSubject: Hi\r\n\r\n.leading dot\r\nBody\r\n"
)


def client(port: int) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
    smtp.ehlo()  # aiosmtpd answers 503 to MAIL before EHLO/HELO
    return smtp


def test_writes_one_eml_per_mail_with_the_envelope(tmp_path: Path) -> None:
    with running_smtp_sandbox(tmp_path) as server, client(server.port) as smtp:
        smtp.sendmail("bounce+m4321@bounce.danang.gov.vn", ["a@example.vn"], MAIL)
        assert server.wait_for_count(1)
    [mail] = server.received
    assert mail.mail_from == "bounce+m4321@bounce.danang.gov.vn"
    assert mail.rcpt_tos == ("a@example.vn",)
    assert mail.message()["Subject"] == "Hi"
    assert b".leading dot\r\nBody" in mail.content  # dot-stuffing undone
    assert mail.path is not None
    assert mail.path.parent == tmp_path
    assert mail.path.name.startswith("m4321-")
    assert mail.path.suffix == ".eml"
    written = mail.path.read_bytes()
    assert written.startswith(
        b"X-Sandbox-Envelope-From: <bounce+m4321@bounce.danang.gov.vn>\r\nX-Sandbox-Envelope-To: <a@example.vn>\r\n"
    )
    assert written.endswith(mail.content)


def test_rejects_recipients_and_senders() -> None:
    behaviour = SmtpBehaviour(reject_recipients={"nobody@example.vn"}, reject_senders={"spoof@example.com"})
    with running_smtp_sandbox(behaviour=behaviour) as server, client(server.port) as smtp:
        code, text = smtp.mail("bantin@danang.gov.vn")
        assert code == 250
        code, text = smtp.rcpt("Nobody@example.vn")
        assert (code, text[:5]) == (550, b"5.1.1")
        smtp.rset()
        code, text = smtp.mail("spoof@example.com")
        assert (code, text[:5]) == (550, b"5.7.1")
    assert server.received == []


def test_refuses_every_sender_with_star() -> None:
    with (
        running_smtp_sandbox(behaviour=SmtpBehaviour(reject_senders={"*"})) as server,
        client(server.port) as smtp,
    ):
        assert smtp.mail("anyone@danang.gov.vn")[0] == 550


def test_temporary_reply_every_nth_and_421_closes() -> None:
    with (
        running_smtp_sandbox(behaviour=SmtpBehaviour(temporary_every=2)) as server,
        client(server.port) as smtp,
    ):
        assert smtp.mail("a@danang.gov.vn")[0] == 250
        smtp.rset()
        code, text = smtp.mail("a@danang.gov.vn")
        assert (code, text[:5]) == (451, b"4.3.0")
        smtp.rset()
        assert smtp.mail("a@danang.gov.vn")[0] == 250

    behaviour = SmtpBehaviour(temporary_every=1, temporary_reply="421 4.7.0 Too many messages, slow down")
    with running_smtp_sandbox(behaviour=behaviour) as server:
        smtp = client(server.port)
        assert smtp.mail("a@danang.gov.vn")[0] == 421
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.noop()  # RFC 5321 §3.8: the server closed the channel after 421
        assert server.wait_for(lambda s: s.connections_open == 0)


def test_drops_the_reply_after_data_but_keeps_the_mail() -> None:
    with running_smtp_sandbox(behaviour=SmtpBehaviour(drop_after_data_every=1)) as server:
        smtp = client(server.port)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.sendmail("a@danang.gov.vn", ["b@example.vn"], MAIL)
        assert server.wait_for_count(1)
        assert server.received[0].reply_dropped


def test_counts_connections_and_stops_listening() -> None:
    with running_smtp_sandbox() as server:
        first, second = client(server.port), client(server.port)
        assert server.wait_for(lambda s: s.connections_total == 2 and s.connections_peak == 2)
        first.quit()
        second.quit()
        port = server.port
    assert not server.running
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_run_smtp_sandbox_blocks_until_stopped(tmp_path: Path) -> None:
    port = free_port()
    stop, started = threading.Event(), threading.Event()
    kwargs = {"folder": tmp_path, "port": port, "stop_event": stop, "started": started}
    thread = threading.Thread(target=run_smtp_sandbox, kwargs=kwargs, daemon=True)
    thread.start()
    try:
        assert started.wait(10)
        smtp = client(port)
        smtp.sendmail("a@danang.gov.vn", ["b@example.vn"], MAIL)
        smtp.quit()
        assert len(list(tmp_path.glob("m4321-*.eml"))) == 1
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
