"""One bind's session: connect and bind_transceiver, the reader loop that dispatches what the SMSC sends,
enquire_link on an idle link, reconnect with back-off, and dropping a dead link (docs/peers.md smpplib gotchas)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from channels.clock import SYSTEM_CLOCK, Clock
from channels.errors import ChannelError, ConfigurationError, ConnectionLost
from channels.sms import pdus, receipts
from channels.sms.smpp.bind import Answers, Bind, Reply
from channels.sms.smpp.client import LockedClient
from channels.sms.smpp.health import HealthReporter
from channels.sms.smpp.statuses import ESME_ROK
from channels.sms.smpp_errors import classify

log = logging.getLogger(__name__)

_MAX_PDU: Final = 64 * 1024  # an SMPP PDU is a few hundred octets; anything huge means a broken stream

# Handed every deliver_sm as read (its bind, the client to answer on, its octets).
DeliverSmHandler = Callable[[Bind, LockedClient, bytes], None]


@dataclass(frozen=True)
class SessionSettings:
    """Where and how every bind of an adapter connects, and how it keeps its link alive."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str
    connect_timeout: float
    enquire_link_interval: float
    reconnect_initial: float
    reconnect_max: float


def read_pdus(bind: Bind, client: Any) -> list[bytes] | None:
    """Every whole PDU the socket holds (at least one), or None after a quiet interval.

    A partial PDU stays buffered for the next call, so a read timeout never loses half of one."""
    sock = client.sock
    if sock is None:
        raise smpplib.exceptions.ConnectionError("socket closed")
    buffer = bind.buffer
    while True:
        found: list[bytes] = []
        position = 0
        while len(buffer) - position >= 4:
            length = int.from_bytes(buffer[position : position + 4], "big")
            if length < 16 or length > _MAX_PDU:
                if found:
                    break  # hand over what came before it; the next call reports the break
                raise smpplib.exceptions.ConnectionError(f"broken PDU stream (command_length {length})")
            if len(buffer) - position < length:
                break
            found.append(bytes(buffer[position : position + length]))
            position += length
        del buffer[:position]
        if found:
            return found
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        if not chunk:
            raise smpplib.exceptions.ConnectionError("connection closed by the SMSC")
        buffer += chunk


class Session:
    """The life of one bind: its reader thread reads and dispatches PDUs, keeps the link alive and reconnects;
    submit_sm answers go to their senders (``hand_answers``), deliver_sm to ``on_deliver_sm``."""

    def __init__(
        self,
        bind: Bind,
        settings: SessionSettings,
        *,
        closing: threading.Event,
        health: HealthReporter,
        hand_answers: Callable[[Answers], None],
        on_deliver_sm: DeliverSmHandler,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.bind = bind
        self.settings = settings
        self._closing = closing
        self._health = health
        self._hand_answers = hand_answers
        self._on_deliver_sm = on_deliver_sm
        self._clock = clock  # when the unanswered enquire_link gives up on the link

    def connect(self) -> None:
        """Connect and bind_transceiver; raises ConfigurationError (refused) or ConnectionLost (network)."""
        bind, settings = self.bind, self.settings
        client = LockedClient(settings.host, settings.port, timeout=settings.connect_timeout)
        with bind.lock:
            bind.connecting = client
        try:
            if self._closing.is_set():
                raise smpplib.exceptions.ConnectionError("adapter is closing")
            client.connect()
            client.bind_transceiver(
                system_id=settings.system_id, password=settings.password, system_type=settings.system_type
            )
        except smpplib.exceptions.PDUError as exc:
            client.disconnect()
            status = int(exc.args[1]) if len(exc.args) > 1 else 0x0D
            error = classify(
                status, detail=f"bind_transceiver to {settings.host}:{settings.port} as {settings.system_id}"
            )
            if not isinstance(error, ConfigurationError):
                raise ConnectionLost(str(error), code=error.code, detail=error.detail) from exc
            raise error from exc
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            client.disconnect()
            # smpplib says "Connection refused" for every socket error; the OSError it replaced says what.
            cause = exc.__context__ if isinstance(exc.__context__, OSError) else exc
            raise ConnectionLost(
                f"cannot bind to {settings.host}:{settings.port}", detail=f"{type(cause).__name__}: {cause}"
            ) from exc
        finally:
            with bind.lock:
                bind.connecting = None
        sock = client.sock
        if sock is not None:
            # The read timeout is the idle interval: when it fires, the reader sends enquire_link (gotcha 6).
            sock.settimeout(settings.enquire_link_interval)
            # One small PDU per write: without TCP_NODELAY, Nagle + delayed ACK stall a window by ~40 ms.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with bind.lock:
            bind.client = client
            bind.generation += 1
            bind.buffer = bytearray()
            bind.enquire_sent_at = None
            bind.connects += 1
            bind.bound.set()
        log.info(
            "bind %d: bound to %s:%d as %s", bind.index, settings.host, settings.port, settings.system_id
        )
        self._health.report_up()

    def drop(self, *, reason: str, generation: int | None) -> None:
        """Forget a dead link: fail its outstanding PDUs as lost-after-write and close the socket."""
        bind = self.bind
        with bind.lock:
            if generation is not None and generation != bind.generation:
                return  # someone already dropped this link
            client, bind.client = bind.client, None
            connecting = bind.connecting if generation is None else None
            pending, bind.pending = bind.pending, {}
            for item in pending.values():
                bind.hold(item)
            was_bound = bind.bound.is_set()
            bind.bound.clear()
            bind.generation += 1
        if connecting is not None and connecting.sock is not None:
            with contextlib.suppress(OSError):
                connecting.sock.shutdown(socket.SHUT_RDWR)  # a bind waiting for its answer gives up now
        if client is not None:
            sock = client.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in recv()
            client.state = (
                smpplib.consts.SMPP_CLIENT_STATE_OPEN
            )  # we unbound (or lost) it: no smpplib warning
            client.disconnect()
        for item in pending.values():
            item.replies.put([Reply(token=item.token, kind="lost")])
        if was_bound and reason != "closed":
            log.warning(
                "bind %d: connection lost (%s); %d PDU(s) in flight", bind.index, reason, len(pending)
            )

    def run(self) -> None:
        """The life of one bind: read and dispatch PDUs, keep the link alive, reconnect with back-off."""
        bind = self.bind
        delay = self.settings.reconnect_initial
        while not self._closing.is_set():
            if not bind.bound.is_set():
                try:
                    self.connect()
                    delay = self.settings.reconnect_initial
                except ChannelError as exc:
                    log.warning("bind %d: reconnect failed (%s); next try in %.1f s", bind.index, exc, delay)
                    self._health.report_down(exc, retry_in=delay)
                    self._closing.wait(delay)
                    delay = min(delay * 2, self.settings.reconnect_max)
                    continue
            with bind.lock:
                client, generation = bind.client, bind.generation
            if client is None:
                continue
            try:
                raws = read_pdus(bind, client)
                if raws is None:
                    self._idle(client)
                    continue
            except (smpplib.exceptions.ConnectionError, OSError) as exc:
                if self._closing.is_set():
                    break
                self.drop(reason=repr(exc) or type(exc).__name__, generation=generation)
                continue
            # Answers are handed to the senders per read, not per PDU: one wake-up for a run of them.
            answers: Answers = {}
            broken: Exception | None = None
            for raw in raws:
                answer = pdus.read_submit_sm_resp(raw)
                if answer is not None:
                    bind.enquire_sent_at = None  # any traffic proves the link is alive
                    self._on_answer("submit_sm_resp", *answer, answers)
                    continue
                if pdus.command_id(raw) == pdus.DELIVER_SM:
                    bind.enquire_sent_at = None
                    bind.deliver_sm_received += 1
                    self._on_deliver_sm(bind, client, raw)
                    continue
                try:
                    pdu = smpplib.smpp.parse_pdu(raw, client=client, allow_unknown_opt_params=True)
                except (
                    smpplib.exceptions.PDUError,
                    smpplib.exceptions.UnknownCommandError,
                    ValueError,
                ) as exc:
                    log.warning("bind %d: unreadable PDU skipped: %r", bind.index, exc)
                    continue
                try:
                    self._dispatch(client, pdu, answers)
                except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
                    broken = exc
                    break
            self._hand_answers(answers)
            if broken is not None:
                if self._closing.is_set():
                    break
                self.drop(reason=repr(broken), generation=generation)
        # A reconnect may have completed while close() was running: never leave a socket behind.
        self.drop(reason="closed", generation=None)
        log.debug("bind %d: reader stopped", bind.index)

    def _on_answer(
        self, command: str, sequence: int, status: int, message_id: str | None, answers: Answers
    ) -> None:
        """A submit_sm_resp or generic_nack: the outcome of one written part, for its sender."""
        bind = self.bind
        with bind.lock:
            item = bind.pending.pop(sequence, None)
            if item is not None:
                bind.hold(item)
        if item is None:
            log.warning("bind %d: %s for unknown or expired sequence %d", bind.index, command, sequence)
            return
        if command == "generic_nack" and status == ESME_ROK:
            status = 0x08  # a NACK without a status still refuses the PDU (ESME_RSYSERR)
        reply = Reply(token=item.token, kind="resp", status=status, provider_id=message_id)
        answers.setdefault(id(item.replies), (item.replies, []))[1].append(reply)

    def _idle(self, client: LockedClient) -> None:
        """Nothing read for an interval: probe with enquire_link, or give up when the last probe went unanswered."""
        bind = self.bind
        now = self._clock.monotonic()
        if (
            bind.enquire_sent_at is not None
            and now - bind.enquire_sent_at >= self.settings.enquire_link_interval
        ):
            raise smpplib.exceptions.ConnectionError("enquire_link unanswered")
        client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
        bind.enquire_sent_at = now
        bind.enquire_links_sent += 1

    def _dispatch(self, client: LockedClient, pdu: Any, answers: Answers) -> None:
        """Act on one PDU from the SMSC; submit_sm answers are collected in ``answers`` (per sender)."""
        bind = self.bind
        command = pdu.command
        bind.enquire_sent_at = None  # any traffic proves the link is alive
        if command in ("submit_sm_resp", "generic_nack"):
            message_id = receipts.text_of(getattr(pdu, "message_id", None)) or None
            self._on_answer(command, int(pdu.sequence), int(pdu.status or 0), message_id, answers)
        elif command == "enquire_link":
            resp = smpplib.smpp.make_pdu("enquire_link_resp", client=client)
            resp.sequence = pdu.sequence
            client.send_pdu(resp)
        elif command == "enquire_link_resp":
            bind.enquire_links_answered += 1
        elif command == "unbind":
            resp = smpplib.smpp.make_pdu("unbind_resp", client=client)
            resp.sequence = pdu.sequence
            client.send_pdu(resp)
            raise smpplib.exceptions.ConnectionError("SMSC unbound the session")
        elif command == "unbind_resp":
            raise smpplib.exceptions.ConnectionError("unbound")
        else:
            log.warning("bind %d: unhandled %s (status 0x%08X)", bind.index, command, pdu.status or 0)
