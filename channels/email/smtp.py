"""The e-mail adapter: send windows of bulletins over SMTP with several reused aiosmtplib connections.

Shape (docs/architecture.md §4, docs/peers.md "aiosmtplib"):

* One asyncio event loop per adapter instance, in a thread of its own, started by :meth:`SmtpAdapter.open`
  (the engine creates adapters after forking its workers). ``send`` is synchronous at the boundary: it builds
  the MIME bytes in the caller's thread from cached per-campaign skeletons (:mod:`channels.email.mime`), hands
  the window to the loop and waits for one :class:`SendResult` per message, in order.
* ``connections`` aiosmtplib ``SMTP`` objects (:mod:`channels.email.smtp_connection`), each used by one worker
  coroutine at a time: one ``SMTP`` object serialises its transactions behind a lock, so concurrency needs N
  objects. They are reused across windows (a new connection per mail halves the rate, far worse over TLS),
  replaced after ``max_messages_per_connection`` mails (real relays cap it) and reopened after the relay hung
  up.
* One recipient per transaction: ``MAIL FROM:<bounce+m{id}@…>`` (VERP), ``RCPT TO``, ``DATA``. We drive the
  three stages ourselves instead of ``sendmail`` so that a failure is classified by stage, and a lost
  connection is ``ConnectionLost`` (safe to resend) until the body was written and ``OutcomeUnknown`` (the
  relay may have queued it, RFC 5321 §4.2.5) from then until the reply to the final dot.
* A 250 after the body means "accepted by the relay", not delivered: delivery news comes back later as DSNs,
  which :meth:`SmtpAdapter.parse_events` reads (``capabilities.receipts`` is therefore False).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import re
import ssl
import threading
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any, ClassVar

import aiosmtplib

from channels.base import (
    AdapterBase,
    Capabilities,
    Channel,
    DeliveryEvent,
    OutboundMessage,
    SendResult,
)
from channels.email.dsn import parse_dsn
from channels.email.mime import BuiltMessage, MimeBuilder, verp_sender
from channels.email.smtp_connection import NETWORK_ERRORS, Connection, RelaySettings, TlsMode
from channels.email.smtp_errors import Stage, classify_exception, classify_reply
from channels.errors import (
    ChannelError,
    ConfigurationError,
    ConnectionLost,
    OutcomeUnknown,
    PermanentError,
    Withheld,
)
from channels.masking import mask_email, mask_text

__all__ = ["SmtpAdapter", "TlsMode"]

log = logging.getLogger(__name__)

# RFC 5321 §4.5.2: a line starting with "." gets another "." (transparency); the wire form ends with CRLF.CRLF.
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(slots=True)
class _Job:
    index: int
    message: OutboundMessage
    built: BuiltMessage
    sender: str
    started: bool = False
    result: SendResult | None = None


@dataclass(slots=True)
class _WindowState:
    # Set when opening a connection failed: the rest of the window fails fast with the same class
    # instead of every message waiting for its own connect timeout.
    down: ChannelError | None = None


class SmtpAdapter(AdapterBase):
    """Sends e-mail through one relay. Keyword-only settings; see the module docstring for the shape."""

    channel: ClassVar[Channel] = Channel.EMAIL
    # 50 per window keeps every connection busy (4 connections x ~12 transactions) while one window stays
    # short enough to be re-planned quickly after a pause; more connections than the window are useless.
    capabilities: ClassVar[Capabilities] = Capabilities(
        window=50, receipts=False, stamps=True, parses_inbound=True, peer="mail relay"
    )

    def __init__(
        self,
        *,
        host: str,
        port: int = 25,
        from_address: str,
        from_name: str | None = None,
        bounce_domain: str | None = None,
        bounce_local: str = "bounce",
        tls: TlsMode = "starttls",
        username: str | None = None,
        password: str | None = None,
        connections: int = 4,
        timeout: float = 30.0,
        max_messages_per_connection: int = 100,
        unsubscribe_base_url: str | None = None,
        unsubscribe_mailto: str | None = None,
        message_id_domain: str | None = None,
        local_hostname: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        auto_submitted: bool = True,
        on_handing: Callable[[Sequence[int]], Collection[int]] | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "tls"):
            raise ConfigurationError(f"tls must be 'none', 'starttls' or 'tls', not {tls!r}")
        if connections < 1 or max_messages_per_connection < 1:
            raise ConfigurationError("connections and max_messages_per_connection must be at least 1")
        if (username is None) != (password is None):
            raise ConfigurationError("give both username and password, or neither")
        self.host = host
        self.port = port
        self.from_address = from_address
        self.bounce_domain = bounce_domain
        self.bounce_local = bounce_local
        self.tls: TlsMode = tls
        self.username = username
        self._password = password  # never logged or printed
        self.connections = min(connections, self.capabilities.window)
        self.timeout = timeout
        self.max_messages_per_connection = max_messages_per_connection
        self.local_hostname = local_hostname
        self.tls_context = tls_context
        try:
            self.builder = MimeBuilder(
                from_address=from_address,
                from_name=from_name,
                message_id_domain=message_id_domain,
                unsubscribe_base_url=unsubscribe_base_url,
                unsubscribe_mailto=unsubscribe_mailto,
                auto_submitted=auto_submitted,
            )
        except ValueError as exc:
            raise ConfigurationError(f"from_address is not usable: {exc}") from exc
        # The engine records which messages may be at the relay before their body is written: after a
        # crash, the others of a window go back to the queue instead of being held as unknown. Messages
        # whose bodies are due together are recorded in one call (the queue is the loop thread's own). It
        # returns the messages that may go; the others were stopped meanwhile and are never written.
        self.on_handing = on_handing
        self._handing_queue: list[tuple[int, asyncio.Future[None]]] = []
        # One commit per body would cost more than the body (every pool process contends for the database's
        # write lock): each record also covers the next messages of the window, renewed in the background,
        # so a crash holds at most ``record_ahead`` (plus one per connection) that were never written, and a
        # window costs a few commits. 4 per connection keeps e-mail at ~0.7-0.8x raw (benchmarks/README.md).
        self.record_ahead = 4 * self.connections
        self._pending: deque[_Job] = deque()  # the current window's jobs not yet started
        self._recorded: set[int] = set()  # the current window's messages already recorded as handed over
        self._withheld: set[int] = set()  # ... and those on_handing did not let go
        self._handing_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conns: list[Connection] = []

    def __repr__(self) -> str:
        return f"SmtpAdapter(host={self.host!r}, port={self.port}, tls={self.tls!r}, user={self.username!r})"

    # -- lifecycle -------------------------------------------------------------------------------------

    def open(self) -> None:
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name=f"smtp-adapter-{self.host}:{self.port}", daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("the SMTP adapter's event loop did not start")
        self._loop, self._thread = loop, thread
        self._conns = [Connection(number=i) for i in range(self.connections)]

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._quit_all(), loop)
        try:
            future.result(timeout=self.timeout + 1)
        except FutureTimeoutError:
            future.cancel()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None
        self._conns = []

    @property
    def connections_opened(self) -> int:
        """Connections opened since ``open()`` (reuse means this stays far below the number of mails)."""
        return sum(conn.opened for conn in self._conns)

    # -- sending ---------------------------------------------------------------------------------------

    def envelope_sender(self, message_id: int) -> str:
        if self.bounce_domain:
            return verp_sender(
                bounce_local=self.bounce_local, domain=self.bounce_domain, message_id=message_id
            )
        return self.builder.from_address

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        loop = self._loop
        if loop is None:
            raise RuntimeError("SmtpAdapter.send() before open()")
        results: list[SendResult | None] = [None] * len(messages)
        jobs: list[_Job] = []
        for index, message in enumerate(messages):
            try:
                built = self.builder.build(message)
            except ValueError as exc:
                results[index] = SendResult.failed(
                    message.message_id, PermanentError("cannot write this message", detail=str(exc))
                )
                continue
            jobs.append(_Job(index, message, built, self.envelope_sender(message.message_id)))
        if jobs:
            future = asyncio.run_coroutine_threadsafe(self._send_jobs(jobs), loop)
            # Every network step has its own timeout; this bound only guards against a wedged loop.
            rounds = math.ceil(len(jobs) / self.connections)
            try:
                future.result(timeout=self.timeout * (5 * rounds + 5))
            except FutureTimeoutError:
                future.cancel()
            for job in jobs:
                results[job.index] = job.result or self._unfinished(job)
        return [r for r in results if r is not None]

    @staticmethod
    def _unfinished(job: _Job) -> SendResult:
        if job.started:
            return SendResult.failed(
                job.message.message_id, OutcomeUnknown("the send did not finish in time")
            )
        return SendResult.failed(job.message.message_id, ConnectionLost("not attempted before the deadline"))

    async def _send_jobs(self, jobs: list[_Job]) -> None:
        queue = deque(jobs)  # the loop is single-threaded: workers share the deque without a lock
        self._pending, self._recorded, self._withheld = queue, set(), set()
        state = _WindowState()
        workers = [self._worker(conn, queue, state) for conn in self._conns[: len(jobs)]]
        await asyncio.gather(*workers)

    async def _worker(self, conn: Connection, queue: deque[_Job], state: _WindowState) -> None:
        while queue:
            job = queue.popleft()
            if state.down is not None:
                job.result = SendResult.failed(job.message.message_id, _same_class(state.down))
                continue
            if job.message.message_id in self._withheld:  # known before its transaction: no command at all
                job.result = SendResult.failed(job.message.message_id, _withheld_error())
                continue
            job.started = True
            job.result = await self._deliver(conn, job, state)
            if conn.connected and conn.sent >= self.max_messages_per_connection:
                await conn.quit()

    async def _deliver(self, conn: Connection, job: _Job, state: _WindowState) -> SendResult:
        message_id = job.message.message_id
        for attempt in (1, 2):
            fresh = False
            if not conn.connected:
                error = await conn.connect(self._relay_settings())
                if error is not None:
                    state.down = error
                    return SendResult.failed(message_id, error)
                fresh = True
            result, stale = await self._transaction(conn, job)
            # A reused connection the relay closed while idle fails at MAIL FROM, before anything of this
            # message was sent: open a new one and try once more.
            if not (stale and not fresh and attempt == 1):
                return result
        raise AssertionError("unreachable: the second attempt always returns")  # pragma: no cover

    def _relay_settings(self) -> RelaySettings:
        return RelaySettings(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            local_hostname=self.local_hostname,
            timeout=self.timeout,
            tls=self.tls,
            tls_context=self.tls_context,
        )

    async def _transaction(self, conn: Connection, job: _Job) -> tuple[SendResult, bool]:
        """One MAIL/RCPT/DATA transaction. Returns the result and whether the connection was found stale."""
        smtp = conn.smtp
        message_id = job.message.message_id
        if smtp is None:  # pragma: no cover - _deliver connects first
            return SendResult.failed(message_id, ConnectionLost("not connected")), False
        data = job.built.data
        mail_options = [f"SIZE={len(data)}"] if "size" in conn.extensions else []
        rcpt_options: list[str] = []
        if "dsn" in conn.extensions:
            # RFC 3461: return only headers (they carry our Message-ID) and tag the envelope with the id.
            mail_options += ["RET=HDRS", f"ENVID=m{message_id}"]
            rcpt_options.append("NOTIFY=FAILURE,DELAY")
        stage = Stage.MAIL
        body_written = False
        try:
            await smtp.mail(job.sender, options=mail_options)
            stage = Stage.RCPT
            await smtp.rcpt(job.built.envelope_recipient, options=rcpt_options)
            stage = Stage.DATA
            reply = await smtp.execute_command(b"DATA")
            if reply.code != 354:  # RFC 5321 §4.1.1.4: 354 invites the body
                error = classify_reply(stage=Stage.DATA, code=reply.code, text=reply.message)
                await conn.reset()
                return SendResult.failed(message_id, error or ConnectionLost("unexpected DATA reply")), False
            protocol = smtp.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("connection lost before the body")
            payload = _LEADING_DOT.sub(b"..", data) + b".\r\n"  # built first: the write follows the record
            try:
                await self._handing(message_id)
            except Withheld as exc:  # stopped meanwhile: the relay drops the transaction without its body
                conn.discard()
                return SendResult.failed(message_id, exc), False
            except Exception as exc:  # not recorded, so not written: safe to send later
                log.warning(
                    "could not record message %d as handed over: %r",
                    message_id,
                    exc,
                    extra={"message_id": message_id},
                )
                conn.discard()  # the relay drops the transaction without its body
                error = ConnectionLost("could not record the message before its body", detail=repr(exc))
                return SendResult.failed(message_id, error), False
            # write() raises before anything is handed to the transport when it is already closing.
            protocol.write(payload)
            body_written = True
            reply = await protocol.read_response(timeout=self.timeout)
        except aiosmtplib.SMTPResponseException as exc:
            error = classify_exception(exc, stage=stage, body_written=body_written)
            if exc.code == 421:
                conn.discard()  # RFC 5321 §3.8: the server is closing the channel
            else:
                await conn.reset()
            return SendResult.failed(message_id, error), False
        except NETWORK_ERRORS as exc:
            conn.discard()  # a timeout leaves the protocol out of step: never reuse it
            error = classify_exception(exc, stage=stage, body_written=body_written)
            stale = stage is Stage.MAIL and isinstance(
                exc, aiosmtplib.SMTPServerDisconnected | ConnectionError
            )
            if not stale:
                log.warning(
                    "smtp transaction failed",
                    extra={"message_id": message_id, "relay": self.host, "error": mask_text(str(error))},
                )
            return SendResult.failed(message_id, error), stale
        conn.sent += 1
        if reply.code == 250:
            return SendResult.sent(message_id, job.built.message_id_header), False
        if reply.code == 421:
            conn.discard()
        error = classify_reply(stage=Stage.DATA, code=reply.code, text=reply.message, after_body=True)
        log.warning(
            "smtp body refused",
            extra={
                "message_id": message_id,
                "recipient": mask_email(job.message.address),
                "code": reply.code,
            },
        )
        return SendResult.failed(
            message_id, error or OutcomeUnknown("unexpected reply after the body")
        ), False

    async def _handing(self, message_id: int) -> None:
        """Return once ``on_handing`` recorded the message (raise if it could not).

        Records run ahead of the connections (the next ``record_ahead`` messages of the window, renewed in
        the background when half are used), so a connection seldom waits for the database."""
        if self.on_handing is None:
            return
        if message_id in self._withheld:
            raise _withheld_error()
        if message_id in self._recorded:
            if self._recorded_ahead() < self.record_ahead // 2:
                self._start_recording()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._handing_queue.append((message_id, future))
        self._start_recording()
        await future

    def _recorded_ahead(self) -> int:
        return sum(1 for job in self._pending if job.message.message_id in self._recorded)

    def _decided(self, message_id: int) -> bool:
        return message_id in self._recorded or message_id in self._withheld

    def _start_recording(self) -> None:
        if self._handing_task is None:
            self._handing_task = asyncio.create_task(self._record_handing())

    async def _record_handing(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.on_handing is not None:
                batch, self._handing_queue = self._handing_queue, []
                # A message asked for while the call before recorded it ahead is decided already: asking
                # again would find it handed, and so not free to go.
                self._settle_handing([(mid, f) for mid, f in batch if self._decided(mid)])
                batch = [(mid, f) for mid, f in batch if not self._decided(mid)]
                room = self.record_ahead - self._recorded_ahead()
                ahead = [
                    job.message.message_id
                    for job in self._pending
                    if not self._decided(job.message.message_id)
                ][: max(0, room)]
                ids = list(dict.fromkeys([mid for mid, _future in batch] + ahead))
                if not ids:
                    break
                try:
                    may_go = set(await loop.run_in_executor(None, self.on_handing, ids))
                except Exception as exc:
                    for _mid, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    self._recorded.update(mid for mid in ids if mid in may_go)
                    self._withheld.update(mid for mid in ids if mid not in may_go)
                    self._settle_handing(batch)
                if not self._handing_queue:
                    break
        finally:
            self._handing_task = None

    def _settle_handing(self, batch: list[tuple[int, asyncio.Future[None]]]) -> None:
        """Let the connections waiting for these decided messages go on: write, or give the message up."""
        for mid, future in batch:
            if future.done():
                continue
            if mid in self._recorded:
                future.set_result(None)
            else:
                future.set_exception(_withheld_error())

    async def _quit_all(self) -> None:
        await asyncio.gather(*(conn.quit() for conn in self._conns))

    # -- events ----------------------------------------------------------------------------------------

    @staticmethod
    def parse_events(raw: Mapping[str, Any]) -> list[DeliveryEvent]:
        """``raw = {"dsn": bytes | str, "envelope_to": optional RCPT TO of the bounce}`` -> DSN events.

        JSON holds text only: a mail that is not UTF-8 comes as Latin-1 text with ``"dsn_encoding":
        "latin-1"`` (each character one byte), one with NULs as ``"dsn_base64"``."""
        data = raw.get("dsn")
        encoded = raw.get("dsn_base64")
        if data is None and isinstance(encoded, str):
            data = base64.b64decode(encoded, validate=True)  # binascii.Error is a ValueError: unreadable
        elif isinstance(data, str) and raw.get("dsn_encoding") == "latin-1":
            data = data.encode("latin-1")
        if not isinstance(data, bytes | str):
            return []
        envelope_to = raw.get("envelope_to")
        return parse_dsn(data, envelope_recipient=str(envelope_to) if envelope_to else None)


def _same_class(error: ChannelError) -> ChannelError:
    """A fresh error of the same class for a message that was not attempted because the relay is down."""
    return type(error)(f"not attempted: {error}", code=error.code, detail=error.detail)


def _withheld_error() -> Withheld:
    return Withheld("the engine withheld the message: not written")
