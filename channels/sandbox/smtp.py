"""A local SMTP server (aiosmtpd) for the sandbox, the demo and the tests: keeps every mail, misbehaves on cue.

Each accepted mail is kept in memory (:attr:`SandboxSmtpServer.received`) and, when a folder is given, written
as one ``.eml`` file named after the outbox id in its ``Message-ID`` with the envelope prepended as
``X-Sandbox-Envelope-From`` / ``X-Sandbox-Envelope-To`` headers. :class:`SmtpBehaviour` switches make it answer
like a real relay that refuses: ``550 5.1.1`` for given recipients, ``550 5.7.1`` to MAIL FROM, a temporary
``451 4.3.0`` or ``421`` (which closes the connection, RFC 5321 §3.8) every Nth message, or a dropped
connection at RCPT (before the body: the client may resend) or after the body (the mail is kept but no reply
comes: the client cannot know).

aiosmtpd's ``Controller`` binds ``::1`` by default, so the host defaults to ``127.0.0.1``. Port 0 lets the kernel
choose a free port, read back from ``port`` after ``start()``: tests pass 0 rather than a port found free earlier,
which another socket may take before the server binds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["ReceivedMail", "SandboxSmtpServer", "SmtpBehaviour", "run_smtp_sandbox"]

_MESSAGE_ID = re.compile(r"<msg-(\d+)\.", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SmtpBehaviour:
    """How the sandbox answers. Replace it at run time with ``server.behaviour = SmtpBehaviour(...)``."""

    reject_recipients: Collection[str] = ()  # RCPT TO -> 550 5.1.1 (RFC 3463 X.1.1 bad mailbox)
    reject_senders: Collection[str] = ()  # MAIL FROM -> 550 5.7.1; "*" refuses every sender
    temporary_every: int = 0  # every Nth MAIL FROM gets ``temporary_reply`` (0 = never)
    temporary_reply: str = "451 4.3.0 Temporary system problem, try again later"
    drop_at_recipients: Collection[str] = ()  # close without a reply at RCPT TO (before the body)
    drop_after_data_every: int = 0  # keep every Nth mail but close instead of answering the final dot


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One mail the sandbox accepted, with its envelope."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes  # as received, CRLF line endings, dot-stuffing removed
    received_at: datetime
    path: Path | None = None
    reply_dropped: bool = False  # the client never got our 250
    peer: str = ""  # the client's host:port, one per TCP connection

    def message(self) -> EmailMessage:
        return message_from_bytes(self.content, policy=default_policy)


class _SandboxSMTP(SMTP):
    """aiosmtpd's protocol with connection counting and two ways to hang up on a client."""

    def __init__(self, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sandbox = handler
        self.drop_next_reply = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sandbox.owner._connection_opened()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._sandbox.owner._connection_closed()
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        if self.drop_next_reply:
            self.drop_next_reply = False
            if self.transport is not None:
                self.transport.close()
            return
        await super().push(status)
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else str(status)
        if text.startswith("421") and self.transport is not None:
            self.transport.close()  # RFC 5321 §3.8: 421 means the server closes the channel


class _Handler:
    def __init__(self, owner: SandboxSmtpServer) -> None:
        self.owner = owner
        self._mail_counter = itertools.count(1)
        self._data_counter = itertools.count(1)

    async def handle_MAIL(
        self,
        server: _SandboxSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        behaviour = self.owner.behaviour
        senders = {s.lower() for s in behaviour.reject_senders}
        if "*" in senders or address.lower() in senders:
            return "550 5.7.1 Sender not authorised to send through this relay"
        number = next(self._mail_counter)
        if behaviour.temporary_every and number % behaviour.temporary_every == 0:
            return behaviour.temporary_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: _SandboxSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        behaviour = self.owner.behaviour
        if address.lower() in {r.lower() for r in behaviour.drop_at_recipients}:
            server.drop_next_reply = True
            return "250 ignored"  # never written: push() hangs up instead
        if address.lower() in {r.lower() for r in behaviour.reject_recipients}:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: _SandboxSMTP, session: Session, envelope: Envelope) -> str:
        behaviour = self.owner.behaviour
        number = next(self._data_counter)
        dropped = bool(behaviour.drop_after_data_every and number % behaviour.drop_after_data_every == 0)
        content = envelope.original_content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        self.owner._store(
            mail_from=str(envelope.mail_from or ""),
            rcpt_tos=tuple(envelope.rcpt_tos),
            content=content,
            reply_dropped=dropped,
            peer=":".join(str(part) for part in session.peer[:2]) if session.peer else "",
        )
        if dropped:
            server.drop_next_reply = True
        return "250 2.0.0 OK: queued"


class SandboxSmtpServer:
    """An SMTP server on a thread of its own. ``start()``/``stop()`` or use it as a context manager."""

    def __init__(
        self,
        folder: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 2525,
        behaviour: SmtpBehaviour | None = None,
        *,
        server_hostname: str = "sandbox.broadcaster.invalid",
    ) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.host = host
        self.port = port
        self.behaviour = behaviour or SmtpBehaviour()
        self.server_hostname = server_hostname
        self.received: list[ReceivedMail] = []
        self.connections_total = 0  # TCP connections accepted since start()
        self.connections_open = 0
        self.connections_peak = 0
        self._condition = threading.Condition()
        self._controller: Controller | None = None
        self._names = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._controller is not None:
            raise RuntimeError("the sandbox SMTP server is already running")
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        handler = _Handler(self)
        controller = _Controller(
            handler, hostname=self.host, port=self.port, server_hostname=self.server_hostname
        )
        controller.start()
        self.port = controller.port  # the kernel's choice when port 0 was asked for
        with self._condition:
            # Controller.start() opened one connection of its own to check readiness; do not count it.
            self.connections_total = 0
            self.connections_peak = self.connections_open
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- inspection ------------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[SandboxSmtpServer], bool], *, timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (checked on every change) or ``timeout`` seconds pass."""
        with self._condition:
            return self._condition.wait_for(lambda: predicate(self), timeout=timeout)

    def wait_for_count(self, count: int, *, timeout: float = 10.0) -> bool:
        return self.wait_for(lambda s: len(s.received) >= count, timeout=timeout)

    def clear(self) -> None:
        with self._condition:
            self.received.clear()

    # -- called from the server thread -----------------------------------------------------------------

    def _connection_opened(self) -> None:
        with self._condition:
            self.connections_total += 1
            self.connections_open += 1
            self.connections_peak = max(self.connections_peak, self.connections_open)
            self._condition.notify_all()

    def _connection_closed(self) -> None:
        with self._condition:
            self.connections_open -= 1
            self._condition.notify_all()

    def _store(
        self, *, mail_from: str, rcpt_tos: tuple[str, ...], content: bytes, reply_dropped: bool, peer: str
    ) -> None:
        path = self._write(mail_from=mail_from, rcpt_tos=rcpt_tos, content=content) if self.folder else None
        mail = ReceivedMail(
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            content=content,
            received_at=datetime.now(UTC),
            path=path,
            reply_dropped=reply_dropped,
            peer=peer,
        )
        with self._condition:
            self.received.append(mail)
            self._condition.notify_all()

    def _write(self, *, mail_from: str, rcpt_tos: tuple[str, ...], content: bytes) -> Path:
        if self.folder is None:
            raise RuntimeError("no folder configured")
        head = content.split(b"\r\n\r\n", 1)[0]
        headers = BytesHeaderParser(policy=default_policy).parsebytes(head + b"\r\n\r\n")
        match = _MESSAGE_ID.search(str(headers.get("Message-ID", "")))
        stem = f"m{match.group(1)}" if match else "mail"
        serial = next(self._names)
        path = self.folder / f"{stem}-{serial:06d}.eml"
        envelope = (
            f"X-Sandbox-Envelope-From: <{mail_from}>\r\nX-Sandbox-Envelope-To: "
            + ", ".join(f"<{r}>" for r in rcpt_tos)
            + "\r\n"
        ).encode("utf-8")
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(envelope + content)
        tmp.replace(path)  # whole files only: the demo may be watching the folder
        return path


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _SandboxSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # The readiness check connects to self.port: with port 0, to the port the listener was given.
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()  # type: ignore[no-untyped-call]


def run_smtp_sandbox(
    *,
    folder: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 2525,
    behaviour: SmtpBehaviour | None = None,
    stop_event: threading.Event | None = None,
    started: threading.Event | None = None,
) -> None:
    """Serve until ``stop_event`` is set or the process is interrupted (the CLI's ``sandbox`` command).

    ``started`` is set once the server accepts connections.
    """
    event = stop_event or threading.Event()
    with SandboxSmtpServer(folder, host, port, behaviour), contextlib.suppress(KeyboardInterrupt):
        if started is not None:
            started.set()
        event.wait()
