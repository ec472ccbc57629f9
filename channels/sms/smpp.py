"""The SMS adapter: submit messages to an SMSC over SMPP v3.4 with smpplib, and pass every deliver_sm on.

Shape (docs/architecture.md §4, SMPP paragraph; docs/peers.md smpplib gotchas 1-8):

* ``binds`` transceiver sessions, each with one reader thread that lives as long as the adapter: it answers
  enquire_link, sends one when the link is idle, reads submit_sm_resp / generic_nack and hands them to the
  sending thread by sequence number, hands every deliver_sm (receipt or MO) to ``on_inbound`` and answers it
  only after ``on_inbound`` returned (the engine commits the raw record inside it), and reconnects with
  back-off when the connection drops.
* smpplib has no locks (gotcha 1): socket writes and sequence numbers go under a lock. We read the socket
  ourselves into a buffer, so a read timeout never loses half a PDU, and an error status never reaches
  smpplib's raising error handler (gotcha 2; we still install a harmless one).
* ``send()`` splits each text with our splitter (``channels.sms.encoding``; never ``gsm.make_parts``, gotcha
  7), keeps at most ``window`` submit_sm outstanding per bind, correlates responses by sequence (they come back
  out of order, gotcha 3), applies a per-PDU timeout and retries throttled PDUs a few times itself. Two
  ``send()`` calls may run at once (``capabilities.overlap``); they share the binds' windows, so the engine's
  next window fills the PDU window while the last one's answers come in.
* The PDUs of a window (submit_sm, submit_sm_resp, deliver_sm, deliver_sm_resp) are written and read as
  octets (``channels.sms.pdus``); smpplib does the binds, enquire_link and the rare PDUs.

Outcome of one message (all its parts):

* every part accepted -> ``SendResult.sent(message_id, *part_ids)`` (part order);
* any part refused -> failed with ``classify(status)``, even when other parts were accepted (the detail
  says which: the handset may show a fragment);
* otherwise, a part whose answer never came (timeout, or connection lost after its write) -> ``OutcomeUnknown``;
  a part never written because the connection was down -> ``ConnectionLost``.

A failed message whose SMSC accepted some parts says which (``SendResult.accepted_parts``) and under which
concatenation reference; the engine keeps both and hands them back with the retry (``OutboundMessage``), which
then sends only the missing parts under that reference: a throttled part 2 never costs a second part 1.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import logging
import queue
import socket
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from channels.base import (
    AdapterBase,
    Capabilities,
    Channel,
    DeliveryEvent,
    LinkHealth,
    OutboundMessage,
    SendResult,
)
from channels.errors import (
    ChannelError,
    ConfigurationError,
    ConnectionLost,
    OutcomeUnknown,
    PermanentError,
    Throttled,
)
from channels.sms import pdus, receipts
from channels.sms.encoding import Encoding, SplitMessage, split
from channels.sms.smpp_errors import classify, status_name

__all__ = ["InboundHandler", "SmppAdapter", "mask_address"]

log = logging.getLogger(__name__)

InboundHandler = Callable[[dict[str, Any]], None]
InboundBatchHandler = Callable[[list[dict[str, Any]]], None]
# Waits until PDUs may be written and says how many (at most the number asked; one token per submit_sm).
Pacer = Callable[[int], int]
HealthHandler = Callable[[LinkHealth], None]
# Told (and returns once it is recorded) which messages are about to have their first part written.
HandingHandler = Callable[[Sequence[int]], None]
# Told (and returns once they are recorded) the results of messages whose every part is answered.
SettledHandler = Callable[[Sequence[SendResult]], None]
SEND_WINDOWS_PER_CALL: Final = 4  # PDU windows' worth of messages per send() call
INBOUND_BATCH_MAX: Final = 200  # deliver_sm records handed over (and committed) together

# SMPP v3.4 §5.1.3 command_status values the adapter acts on itself.
ESME_ROK: Final = 0x00
ESME_RMSGQFUL: Final = 0x14
ESME_RTHROTTLED: Final = 0x58
ESME_RX_T_APPN: Final = 0x64  # our answer to a deliver_sm we could not store: the SMSC redelivers later
_THROTTLE_STATUSES: Final = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
# SMPP v3.4 §5.2.17 registered_delivery: 0x01 = receipt on final success or failure.
_REGISTERED_DELIVERY: Final = 0x01
# SMPP v3.4 §5.2.5/§5.2.6 TON/NPI of an E.164 destination: international (1) / ISDN E.164 (1).
_TON_INTERNATIONAL: Final = 1
_NPI_ISDN: Final = 1
_MAX_PDU: Final = 64 * 1024  # an SMPP PDU is a few hundred octets; anything huge means a broken stream
_REFERENCE_MEMORY: Final = 65536  # destinations whose concatenation counter we remember (LRU)


def mask_address(address: str | None) -> str:
    """A phone number for logs: everything but the last 3 digits hidden (docs/style.md, personal data)."""
    if not address:
        return "-"
    return "*" * max(len(address) - 3, 0) + address[-3:]


class _WriteFailed(smpplib.exceptions.ConnectionError):  # type: ignore[misc]
    """A batched write broke off: its first ``complete`` PDUs went out whole, the rest did not."""

    def __init__(self, complete: int, reason: str) -> None:
        super().__init__(reason)
        self.complete = complete


class _LockedSequence(smpplib.client.SimpleSequenceGenerator):  # type: ignore[misc]
    """smpplib's sequence generator behind a lock (gotcha 1: ``_sequence += 1`` races between threads)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            return int(super().next_sequence())


class _LockedClient(smpplib.client.Client):  # type: ignore[misc]
    """An smpplib client whose socket writes are serialised: the reader and the sender both write."""

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        super().__init__(
            host,
            port,
            timeout=timeout,
            sequence_generator=_LockedSequence(),
            allow_unknown_opt_params=True,  # gotcha 5: vendor TLVs in receipts must not raise
            logger_name=f"{__name__}.wire",
        )
        self._write_lock = threading.Lock()
        # Gotcha 2: the default handler raises PDUError; we dispatch statuses ourselves and never call
        # read_once(), but keep a harmless handler in case anything in smpplib does.
        self.set_error_pdu_handler(
            lambda pdu: log.debug("error PDU %s status 0x%08X", pdu.command, pdu.status)
        )

    def send_pdu(self, p: Any) -> bool:
        with self._write_lock:
            return bool(super().send_pdu(p))

    def send_octets(self, command: str, octets: Sequence[bytes]) -> None:
        """Write several ``command`` PDUs (their octets) with as few system calls as the socket allows.

        Each ``sendall`` gives up the GIL and must win it back from the reader and the engine's threads; one
        write per window instead of one per PDU is most of what separates a threaded gateway from a
        single-threaded client. Raises ``_WriteFailed`` saying how many PDUs went out whole.
        """
        ends = list(itertools.accumulate(len(chunk) for chunk in octets))
        data = b"".join(octets)
        with self._write_lock:
            if self.state not in smpplib.consts.COMMAND_STATES[command]:
                raise _WriteFailed(0, f"session state {self.state} does not allow {command}")
            sock = self._socket
            if sock is None:
                raise _WriteFailed(0, "socket closed")
            view = memoryview(data)
            written = 0
            try:
                while written < len(data):
                    written += sock.send(view[written:])
            except OSError as exc:
                raise _WriteFailed(bisect.bisect_right(ends, written), repr(exc)) from exc

    @property
    def sock(self) -> socket.socket | None:
        return self._socket  # type: ignore[no-any-return]


@dataclass(eq=False)
class _Pending:
    """One written submit_sm waiting for its answer; the sender's queue receives the outcome."""

    token: int
    replies: queue.Queue[list[_Reply]]
    # Set when the message's result is reported early (on_settled): its answered part keeps the window slot
    # until that result is recorded, so a crash never holds more messages than a window.
    job: _MessageJob | None = None


@dataclass(frozen=True, slots=True)
class _Reply:
    token: int
    kind: str  # "resp" (submit_sm_resp or generic_nack) or "lost"
    status: int = 0
    provider_id: str | None = None


@dataclass(eq=False)
class _Bind:
    """One transceiver session and its reader thread."""

    index: int
    client: _LockedClient | None = None
    connecting: _LockedClient | None = None  # a bind in progress, so close() can interrupt it
    generation: int = 0  # bumped on every (re)connect and loss, so stale writers cannot touch a new link
    bound: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the fields below and the client
    pending: dict[int, _Pending] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)
    enquire_sent_at: float | None = None
    thread: threading.Thread | None = None
    # Counters for health checks and tests.
    connects: int = 0
    enquire_links_sent: int = 0
    enquire_links_answered: int = 0
    deliver_sm_received: int = 0
    peak_outstanding: int = 0  # the most submit_sm ever waiting for an answer at once (never above window)
    # Answered parts of messages whose result the engine has not recorded yet (on_settled): they still hold
    # window slots, so written-but-unrecorded messages never exceed the window.
    settling: int = 0

    def outstanding(self) -> int:
        with self.lock:
            return len(self.pending)

    def in_use(self) -> int:
        """Window slots taken: PDUs waiting for an answer, and answered parts not yet recorded."""
        with self.lock:
            return len(self.pending) + self.settling

    def hold(self, item: _Pending) -> None:
        """An early-settled part was answered (or lost): its slot is kept until its result is recorded.
        Called with ``lock`` held."""
        if item.job is not None:
            self.settling += 1
            item.job.held_on.append(self)


@dataclass(eq=False)
class _MessageJob:
    index: int
    message: OutboundMessage
    destination: bytes  # destination_addr as written (pdus.address)
    split: SplitMessage
    part_ids: list[str | None]
    part_state: list[str]  # "new", "inflight", "ok", "refused", "unknown", "unwritten", "skipped"
    refusals: dict[int, int] = field(default_factory=dict)  # part number -> command_status
    bind: _Bind | None = None
    handed: bool = False  # on_handing was told before its first part was written
    early: bool = False  # its result is reported through on_settled as soon as it is known
    settled: bool = False  # ... and it was
    held_on: list[_Bind] = field(default_factory=list)  # a window slot per answered part, until settled

    def done(self) -> bool:
        return all(state not in ("new", "inflight") for state in self.part_state)


@dataclass(order=True)
class _PartTask:
    not_before: float
    seq: int
    job: _MessageJob = field(compare=False)
    part: int = field(compare=False)  # 0-based
    attempt: int = field(compare=False, default=1)


@dataclass(eq=False)
class _Waiting:
    """Parts of one send() call waiting to be written: first attempts in message order, and throttled retries
    by when they are due. Due retries go first: their message holds a window slot that they take over."""

    fresh: list[_PartTask] = field(default_factory=list)  # heap by seq (due at once)
    retries: list[_PartTask] = field(default_factory=list)  # heap by not_before

    def __bool__(self) -> bool:
        return bool(self.fresh or self.retries)

    def push(self, task: _PartTask) -> None:
        heapq.heappush(self.retries if task.attempt > 1 else self.fresh, task)

    def next_due(self) -> float:
        return min(queue[0].not_before for queue in (self.fresh, self.retries) if queue)

    def due(self, now: float) -> int:
        return len(self.fresh) + sum(1 for task in self.retries if task.not_before <= now)

    def taking_over(self, now: float) -> int:
        """Due parts that will take over a slot their message holds (need a token but no room). Of the first
        attempts only the next one is looked at: a message is cut between two writes only at its front."""
        tasks = [task for task in self.retries if task.not_before <= now and task.job.held_on]
        if self.fresh and self.fresh[0].job.held_on:
            tasks.append(self.fresh[0])
        per_job = Counter(task.job for task in tasks)
        return sum(min(count, len(job.held_on)) for job, count in per_job.items())

    def pop_retry(self, now: float) -> _PartTask | None:
        return heapq.heappop(self.retries) if self.retries and self.retries[0].not_before <= now else None

    def pop_fresh(self) -> _PartTask | None:
        return heapq.heappop(self.fresh) if self.fresh else None


@dataclass(frozen=True, slots=True)
class _Inflight:
    token: int
    task: _PartTask
    bind: _Bind
    sequence: int
    deadline: float


class SmppAdapter(AdapterBase):
    """SMS over SMPP v3.4 (transceiver binds). See the module docstring for the outcome rules."""

    channel: ClassVar[Channel] = Channel.SMS
    capabilities: ClassVar[Capabilities] = Capabilities(window=64, receipts=True, max_length=None)

    def __init__(
        self,
        *,
        host: str,
        port: int,
        system_id: str,
        password: str,
        source_addr: str,
        source_ton: int = 5,  # alphanumeric brandname (docs/domain.md §4)
        source_npi: int = 0,
        system_type: str = "",
        binds: int = 1,
        window: int = 64,
        pdu_timeout: float = 10.0,
        enquire_link_interval: float = 30.0,
        registered_delivery: bool = True,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 20.0,
        connect_timeout: float = 10.0,
        throttle_retries: int = 5,
        throttle_backoff: float = 0.1,
        throttle_backoff_max: float = 1.0,
        on_inbound: InboundHandler | None = None,
        on_inbound_batch: InboundBatchHandler | None = None,
        pacer: Pacer | None = None,
        on_health: HealthHandler | None = None,
        bind_in_background: bool = False,
        on_handing: HandingHandler | None = None,
    ) -> None:
        if binds < 1 or window < 1:
            raise ValueError("binds and window must be at least 1")
        self.host = host
        self.port = port
        self.system_id = system_id
        self._password = password
        self.source_addr = source_addr
        self.source_ton = source_ton
        self.source_npi = source_npi
        self.system_type = system_type
        self.window = window
        self.pdu_timeout = pdu_timeout
        self.enquire_link_interval = enquire_link_interval
        self.registered_delivery = registered_delivery
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.connect_timeout = connect_timeout
        self.throttle_retries = throttle_retries
        self.throttle_backoff = throttle_backoff
        self.throttle_backoff_max = throttle_backoff_max
        self.on_inbound = on_inbound
        # deliver_sm are handed to the engine from a thread of their own, so that a database commit never
        # holds up the reader (and with it the submit_sm_resps of the send window). With
        # ``on_inbound_batch`` the engine commits everything that queued up meanwhile in one transaction
        # (a group commit); either way each deliver_sm is answered only after its handler returned.
        self.on_inbound_batch = on_inbound_batch
        # The account's rate limit, counted in submit_sm (carriers meter PDUs, not messages): every write,
        # throttled retries included, first takes its tokens. None: unlimited.
        self.pacer = pacer
        # Told when the SMSC becomes unreachable (since when, the error, the next attempt) and reachable again.
        self.on_health = on_health
        self._down_since: datetime | None = None
        self._reported_up = False
        self._health_lock = threading.Lock()
        # A gateway opens in the background: when the SMSC is down at start, open() does not raise; the
        # readers keep trying, and the engine waits for a bind (wait_bound) before it claims anything.
        self.bind_in_background = bind_in_background
        # The engine records which messages may be at the SMSC before their first PDU is written: after a
        # crash, the others of a window go back to the queue instead of being held as unknown.
        self.on_handing = on_handing
        self._inbound: queue.Queue[tuple[_Bind, Any, int, dict[str, Any]] | None] = queue.Queue()
        self._inbound_thread: threading.Thread | None = None
        # The engine hands us this many messages per send(), and two calls at once: the PDU window never
        # drains between calls, and several PDU windows' worth per call spreads the engine's claim and record
        # of each call over more messages. The Protocol declares ``capabilities`` a ClassVar; an instance
        # entry shadows it for this adapter only.
        self.__dict__["capabilities"] = Capabilities(
            window=window * binds * SEND_WINDOWS_PER_CALL,
            receipts=True,
            max_length=None,
            overlap=2,
            settles=True,
        )
        self._submit_sm_writer = pdus.SubmitSmWriter(
            source_ton=source_ton,
            source_npi=source_npi,
            source_addr=source_addr,
            dest_ton=_TON_INTERNATIONAL,
            dest_npi=_NPI_ISDN,
            registered_delivery=_REGISTERED_DELIVERY if registered_delivery else 0,
        )
        # Two send() calls at once share the binds' windows: the second one's parts fill each window as the
        # first one's drain. Checking a window for room and filling it is one step under this lock.
        self._filling = threading.Lock()
        # Senders whose parts wait for room: answers to anyone's parts wake them (see _wake_for_room).
        self._wanting_room: set[queue.Queue[list[_Reply]]] = set()
        self._room_lock = threading.Lock()
        self._binds = [_Bind(index=i) for i in range(binds)]
        self._closing = threading.Event()
        self._opened = False
        self._tokens = itertools.count(1)
        self._references: OrderedDict[str, int] = OrderedDict()
        self._reference_lock = threading.Lock()
        self._next_bind = itertools.cycle(range(binds))

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Bind every session once (raising on a refused bind), then start the reader threads.

        A bind that fails for a network reason is retried in the background by its reader; ``open`` raises
        ``ConnectionLost`` only when no session could bind at all (never with ``bind_in_background``).
        """
        if self._opened:
            return
        self._closing.clear()
        failures: list[ChannelError] = []
        for bind in self._binds:
            try:
                self._connect(bind)
            except ConfigurationError:
                self._shutdown_binds()
                raise
            except ChannelError as exc:
                failures.append(exc)
                self._report_down(exc, retry_in=self.reconnect_initial)
        if len(failures) == len(self._binds) and not self.bind_in_background:
            self._shutdown_binds()
            raise ConnectionLost(
                f"no SMPP bind to {self.host}:{self.port} succeeded", detail=str(failures[0])
            ) from failures[0]
        for bind in self._binds:
            bind.thread = threading.Thread(
                target=self._reader,
                args=(bind,),
                name=f"smpp-reader-{self.system_id}-{bind.index}",
                daemon=True,
            )
            bind.thread.start()
        self._inbound_thread = threading.Thread(
            target=self._inbound_loop, name=f"smpp-inbound-{self.system_id}", daemon=True
        )
        self._inbound_thread.start()
        self._opened = True

    def close(self) -> None:
        """Unbind every session, stop the readers, close the sockets. Idempotent."""
        self._closing.set()
        for bind in self._binds:
            with bind.lock:
                client = bind.client if bind.bound.is_set() else None
            if client is None:
                continue
            try:
                client.send_pdu(smpplib.smpp.make_pdu("unbind", client=client))
            except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
                # Gotcha 8: smpp34 (and some SMSCs) close before unbind_resp; the link is gone either way.
                log.debug("bind %d: unbind failed: %r", bind.index, exc)
        for bind in self._binds:
            if bind.thread is not None:
                bind.thread.join(max(1.0, min(self.pdu_timeout, 3.0)))
        if self._inbound_thread is not None:
            self._inbound.put(None)  # after what is queued: records already read are still handed over
            self._inbound_thread.join(max(1.0, min(self.pdu_timeout, 3.0)))
            self._inbound_thread = None
        self._shutdown_binds()
        for bind in self._binds:
            if bind.thread is not None:
                bind.thread.join(5.0)
                if bind.thread.is_alive():
                    log.warning("bind %d: reader thread did not stop within 5 s", bind.index)
                bind.thread = None
        self._opened = False

    def _shutdown_binds(self) -> None:
        for bind in self._binds:
            self._drop(bind, reason="closed", generation=None)

    @property
    def bound_count(self) -> int:
        """How many sessions are bound right now."""
        return sum(1 for bind in self._binds if bind.bound.is_set())

    def wait_bound(self, timeout: float, *, count: int = 1) -> bool:
        """Block until at least ``count`` sessions are bound (after a reconnect, say) or the timeout passes."""
        deadline = time.monotonic() + timeout
        while self.bound_count < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            unbound = next(b for b in self._binds if not b.bound.is_set())
            unbound.bound.wait(min(remaining, 0.1))
        return True

    def stats(self) -> dict[str, int]:
        """Counters summed over the binds (for health checks and tests)."""
        return {
            "bound": self.bound_count,
            "connects": sum(b.connects for b in self._binds),
            "enquire_links_sent": sum(b.enquire_links_sent for b in self._binds),
            "enquire_links_answered": sum(b.enquire_links_answered for b in self._binds),
            "deliver_sm_received": sum(b.deliver_sm_received for b in self._binds),
            "outstanding": sum(b.outstanding() for b in self._binds),
            "peak_outstanding": max(b.peak_outstanding for b in self._binds),
        }

    # ------------------------------------------------------------------ connection handling
    def _connect(self, bind: _Bind) -> None:
        """Connect and bind_transceiver; raises ConfigurationError (refused) or ConnectionLost (network)."""
        client = _LockedClient(self.host, self.port, timeout=self.connect_timeout)
        with bind.lock:
            bind.connecting = client
        try:
            if self._closing.is_set():
                raise smpplib.exceptions.ConnectionError("adapter is closing")
            client.connect()
            client.bind_transceiver(
                system_id=self.system_id, password=self._password, system_type=self.system_type
            )
        except smpplib.exceptions.PDUError as exc:
            client.disconnect()
            status = int(exc.args[1]) if len(exc.args) > 1 else 0x0D
            error = classify(
                status, detail=f"bind_transceiver to {self.host}:{self.port} as {self.system_id}"
            )
            if not isinstance(error, ConfigurationError):
                raise ConnectionLost(str(error), code=error.code, detail=error.detail) from exc
            raise error from exc
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            client.disconnect()
            # smpplib says "Connection refused" for every socket error; the OSError it replaced says what.
            cause = exc.__context__ if isinstance(exc.__context__, OSError) else exc
            raise ConnectionLost(
                f"cannot bind to {self.host}:{self.port}", detail=f"{type(cause).__name__}: {cause}"
            ) from exc
        finally:
            with bind.lock:
                bind.connecting = None
        sock = client.sock
        if sock is not None:
            # The read timeout is the idle interval: when it fires, the reader sends enquire_link (gotcha 6).
            sock.settimeout(self.enquire_link_interval)
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
        log.info("bind %d: bound to %s:%d as %s", bind.index, self.host, self.port, self.system_id)
        self._report_up()

    def _report_down(self, error: ChannelError, *, retry_in: float) -> None:
        """No session is bound and a connection attempt failed: tell the engine (since when, why, next try)."""
        if self.on_health is None or self.bound_count > 0 or self._closing.is_set():
            return
        now = datetime.now(UTC)
        with self._health_lock:
            self._down_since = self._down_since or now
            self._reported_up = False
            since = self._down_since
        reason = error.detail or str(error)
        self._tell_health(
            LinkHealth(
                reachable=False,
                since=since,
                detail=f"{self.host}:{self.port}: {reason}",
                retry_at=datetime.fromtimestamp(now.timestamp() + retry_in, UTC),
            )
        )

    def _report_up(self) -> None:
        if self.on_health is None:
            return
        with self._health_lock:
            if self._reported_up:
                return  # another bind of a link already reported up
            self._down_since, self._reported_up = None, True
        self._tell_health(
            LinkHealth(
                reachable=True,
                since=datetime.now(UTC),
                detail=f"bound to {self.host}:{self.port} as {self.system_id}",
            )
        )

    def _tell_health(self, health: LinkHealth) -> None:
        assert self.on_health is not None
        try:
            self.on_health(health)
        except Exception:  # a health report must never stop a reader (it is what keeps the link up)
            log.exception("could not record the health of %s:%d", self.host, self.port)

    def _drop(self, bind: _Bind, *, reason: str, generation: int | None) -> None:
        """Forget a dead link: fail its outstanding PDUs as lost-after-write and close the socket."""
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
            item.replies.put([_Reply(token=item.token, kind="lost")])
        if was_bound and reason != "closed":
            log.warning(
                "bind %d: connection lost (%s); %d PDU(s) in flight", bind.index, reason, len(pending)
            )

    def _reader(self, bind: _Bind) -> None:
        """The life of one bind: read and dispatch PDUs, keep the link alive, reconnect with back-off."""
        delay = self.reconnect_initial
        while not self._closing.is_set():
            if not bind.bound.is_set():
                try:
                    self._connect(bind)
                    delay = self.reconnect_initial
                except ChannelError as exc:
                    log.warning("bind %d: reconnect failed (%s); next try in %.1f s", bind.index, exc, delay)
                    self._report_down(exc, retry_in=delay)
                    self._closing.wait(delay)
                    delay = min(delay * 2, self.reconnect_max)
                    continue
            with bind.lock:
                client, generation = bind.client, bind.generation
            if client is None:
                continue
            try:
                raws = self._read_pdus(bind, client)
                if raws is None:
                    self._idle(bind, client)
                    continue
            except (smpplib.exceptions.ConnectionError, OSError) as exc:
                if self._closing.is_set():
                    break
                self._drop(bind, reason=repr(exc) or type(exc).__name__, generation=generation)
                continue
            # Answers are handed to the senders per read, not per PDU: one wake-up for a run of them.
            answers: dict[int, tuple[queue.Queue[list[_Reply]], list[_Reply]]] = {}
            broken: Exception | None = None
            for raw in raws:
                answer = pdus.read_submit_sm_resp(raw)
                if answer is not None:
                    bind.enquire_sent_at = None  # any traffic proves the link is alive
                    self._on_answer(bind, "submit_sm_resp", *answer, answers)
                    continue
                if pdus.command_id(raw) == pdus.DELIVER_SM:
                    bind.enquire_sent_at = None
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
                    self._dispatch(bind, client, pdu, answers)
                except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
                    broken = exc
                    break
            for replies, batch in answers.values():
                replies.put(batch)
            if answers and self._wanting_room:
                self._wake_for_room(answers)
            if broken is not None:
                if self._closing.is_set():
                    break
                self._drop(bind, reason=repr(broken), generation=generation)
        # A reconnect may have completed while close() was running: never leave a socket behind.
        self._drop(bind, reason="closed", generation=None)
        log.debug("bind %d: reader stopped", bind.index)

    def _on_answer(
        self,
        bind: _Bind,
        command: str,
        sequence: int,
        status: int,
        message_id: str | None,
        answers: dict[int, tuple[queue.Queue[list[_Reply]], list[_Reply]]],
    ) -> None:
        """A submit_sm_resp or generic_nack: the outcome of one written part, for its sender."""
        with bind.lock:
            item = bind.pending.pop(sequence, None)
            if item is not None:
                bind.hold(item)
        if item is None:
            log.warning("bind %d: %s for unknown or expired sequence %d", bind.index, command, sequence)
            return
        if command == "generic_nack" and status == ESME_ROK:
            status = 0x08  # a NACK without a status still refuses the PDU (ESME_RSYSERR)
        reply = _Reply(token=item.token, kind="resp", status=status, provider_id=message_id)
        answers.setdefault(id(item.replies), (item.replies, []))[1].append(reply)

    def _read_pdus(self, bind: _Bind, client: _LockedClient) -> list[bytes] | None:
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

    def _idle(self, bind: _Bind, client: _LockedClient) -> None:
        """Nothing read for an interval: probe with enquire_link, or give up when the last probe went unanswered."""
        now = time.monotonic()
        if bind.enquire_sent_at is not None and now - bind.enquire_sent_at >= self.enquire_link_interval:
            raise smpplib.exceptions.ConnectionError("enquire_link unanswered")
        client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
        bind.enquire_sent_at = now
        bind.enquire_links_sent += 1

    def _dispatch(
        self,
        bind: _Bind,
        client: _LockedClient,
        pdu: Any,
        answers: dict[int, tuple[queue.Queue[list[_Reply]], list[_Reply]]],
    ) -> None:
        """Act on one PDU from the SMSC; submit_sm answers are collected in ``answers`` (per sender)."""
        command = pdu.command
        bind.enquire_sent_at = None  # any traffic proves the link is alive
        if command in ("submit_sm_resp", "generic_nack"):
            message_id = receipts.text_of(getattr(pdu, "message_id", None)) or None
            self._on_answer(bind, command, int(pdu.sequence), int(pdu.status or 0), message_id, answers)
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

    def _on_deliver_sm(self, bind: _Bind, client: _LockedClient, raw: bytes) -> None:
        """Queue a deliver_sm for the hand-over thread, kept as its own octets: the record the engine stores
        (read later, elsewhere, by ``receipts.read_pdu``; parsing every receipt here cost the reader half its
        time)."""
        bind.deliver_sm_received += 1
        sequence = int.from_bytes(raw[12:16], "big")
        record = {
            "command": "deliver_sm",
            "sequence": sequence,
            "bind": bind.index,
            "system_id": self.system_id,
            "received_at": datetime.now(UTC).isoformat(),
            "pdu_hex": raw.hex(),
        }
        self._inbound.put((bind, client, sequence, record))

    def _inbound_loop(self) -> None:
        while True:
            item = self._inbound.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < INBOUND_BATCH_MAX:
                try:
                    more = self._inbound.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._inbound.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._hand_over(batch)

    def _hand_over(self, batch: list[tuple[_Bind, Any, int, dict[str, Any]]]) -> None:
        """Give the records to the engine, then answer each deliver_sm with the outcome."""
        records = [record for _bind, _client, _sequence, record in batch]
        statuses = [ESME_ROK] * len(batch)
        if self.on_inbound_batch is not None:
            try:
                self.on_inbound_batch(records)
            except Exception:  # task boundary: the engine's callback must never kill the hand-over thread
                log.exception(
                    "on_inbound_batch failed for %d deliver_sm; answering ESME_RX_T_APPN", len(batch)
                )
                statuses = [ESME_RX_T_APPN] * len(batch)
        elif self.on_inbound is not None:
            for index, record in enumerate(records):
                try:
                    self.on_inbound(record)
                except Exception:  # task boundary, as above
                    log.exception(
                        "bind %d: on_inbound failed for deliver_sm %d; answering ESME_RX_T_APPN",
                        record["bind"],
                        record["sequence"],
                    )
                    statuses[index] = ESME_RX_T_APPN
        else:
            log.warning("%d deliver_sm with no on_inbound handler; acknowledged and dropped", len(batch))
        answers: dict[int, tuple[_Bind, Any, list[bytes]]] = {}  # per connection, in order
        for (bind, client, sequence, _record), status in zip(batch, statuses, strict=True):
            answers.setdefault(id(client), (bind, client, []))[2].append(
                pdus.deliver_sm_resp(sequence, status)
            )
        for bind, client, resps in answers.values():
            try:
                client.send_octets("deliver_sm_resp", resps)
            except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
                # The session dropped or is unbinding; the SMSC redelivers unanswered deliver_sm later.
                log.debug("bind %d: %d deliver_sm_resp not sent: %r", bind.index, len(resps), exc)

    # ------------------------------------------------------------------ sending
    def _reference(self, destination: str) -> int:
        """The next 8-bit concatenation reference for a destination (TS 23.040 §9.2.3.24.1): a counter,
        not random, so two long messages in flight to one handset never share one (gotcha 7)."""
        with self._reference_lock:
            value = self._references.pop(destination, len(self._references) % 256)
            self._references[destination] = (value + 1) % 256
            if len(self._references) > _REFERENCE_MEMORY:
                self._references.popitem(last=False)
            return value

    def _pick_bind(self) -> _Bind | None:
        for _ in range(len(self._binds)):
            bind = self._binds[next(self._next_bind)]
            if bind.bound.is_set():
                return bind
        return None

    def send(
        self, messages: Sequence[OutboundMessage], *, on_settled: SettledHandler | None = None
    ) -> list[SendResult]:
        """Submit a window of messages; one SendResult per message, in order. Never raises per message.

        With ``on_settled``, each message's result is also reported as soon as every part is answered (the
        call returns once it is recorded), and its window slots stay taken until then."""
        results: list[SendResult | None] = [None] * len(messages)
        jobs: list[_MessageJob] = []
        for index, message in enumerate(messages):
            destination = message.address.lstrip("+")
            try:
                address = pdus.address(destination)
                encoding = Encoding(message.encoding) if message.encoding else None
                reference = message.sms_reference
                if reference is None:
                    reference = self._reference(destination)
                parts = split(message.body, reference=reference, encoding=encoding)
            except ValueError as exc:
                results[index] = SendResult.failed(
                    message.message_id, PermanentError("message cannot be encoded as SMS", detail=str(exc))
                )
                continue
            count = len(parts.parts)
            job = _MessageJob(
                index=index,
                message=message,
                destination=address,
                split=parts,
                part_ids=[None] * count,
                part_state=["new"] * count,
            )
            for number, provider_id in message.accepted_parts.items():
                if 1 <= number <= count:  # accepted by an earlier attempt: never sent twice
                    job.part_state[number - 1], job.part_ids[number - 1] = "ok", provider_id
            jobs.append(job)
        if jobs and not self.wait_bound(self.pdu_timeout if self._opened else 0.0):
            log.warning("no SMPP bind available; %d message(s) not sent", len(jobs))
        self._run_jobs(jobs, on_settled)
        for job in jobs:
            results[job.index] = self._result(job)
        return [r for r in results if r is not None]

    def _run_jobs(self, jobs: list[_MessageJob], on_settled: SettledHandler | None) -> None:
        try:
            self._run_jobs_until_answered(jobs, on_settled)
        finally:
            # Whatever happened, no slot stays taken and every result is reported (a message settled early
            # is not reported twice).
            if on_settled is not None:
                self._settle([job for job in jobs if not job.settled], on_settled)
            for job in jobs:
                self._release(job)

    def _run_jobs_until_answered(self, jobs: list[_MessageJob], on_settled: SettledHandler | None) -> None:
        for job in jobs:
            job.early = on_settled is not None
        replies: queue.Queue[list[_Reply]] = queue.Queue()
        waiting = _Waiting()
        seq = itertools.count()
        for job in jobs:
            job.bind = self._pick_bind()
            for part, state in enumerate(job.part_state):
                if state == "new":
                    waiting.push(_PartTask(0.0, next(seq), job, part))
        # token -> what was written where; insertion order is write order, so also deadline order.
        inflight: dict[int, _Inflight] = {}

        while waiting or inflight:
            done: list[_MessageJob] = []  # messages whose every part is now answered (or never will be)
            # 1. Write every due part whose bind has room in its window: one write per bind.
            blocked = self._write_due(waiting, inflight, replies, done)

            # 2. Wait for the next answers, the next due retry, or the next PDU deadline.
            if not inflight and not waiting:
                break
            now = time.monotonic()
            wake = min(
                next(iter(inflight.values())).deadline if inflight else now + 0.5,
                waiting.next_due() if waiting and not blocked else now + 0.05,
            )
            try:
                batch = replies.get(timeout=max(0.0, min(wake - now, 0.5)))
            except queue.Empty:
                batch = []
            while True:
                for reply in batch:
                    finished = self._apply(reply, inflight, waiting, seq)
                    if finished is not None:
                        done.append(finished)
                try:
                    batch = replies.get_nowait()
                except queue.Empty:
                    break

            # 3. Expire PDUs whose answer is overdue: the SMSC may have them (OutcomeUnknown).
            now = time.monotonic()
            while inflight:
                token, item = next(iter(inflight.items()))
                if item.deadline > now:
                    break
                del inflight[token]
                task = item.task
                with item.bind.lock:
                    pending = item.bind.pending.get(item.sequence)
                    if pending is not None and pending.token == token:
                        del item.bind.pending[item.sequence]
                task.job.part_state[task.part] = "unknown"
                log.warning(
                    "message %d part %d: no submit_sm_resp within %.1f s",
                    task.job.message.message_id,
                    task.part + 1,
                    self.pdu_timeout,
                )
                if task.job.done():
                    done.append(task.job)

            # 4. Record the results that are complete, which frees their window slots.
            if on_settled is not None and done:
                self._settle(done, on_settled)

    def _settle(self, jobs: Sequence[_MessageJob], on_settled: SettledHandler) -> None:
        """Report finished messages' results (once each), then free the window slots they held."""
        jobs = [job for job in dict.fromkeys(jobs) if not job.settled]
        if not jobs:
            return
        try:
            on_settled([self._result(job) for job in jobs])
        except Exception:
            # Not recorded now: the engine records them from send()'s return value instead.
            log.exception("could not record the results of %d message(s) early", len(jobs))
        for job in jobs:
            job.settled = True
            self._release(job)

    def _release(self, job: _MessageJob) -> None:
        """Free the window slots a message's answered parts held; wake senders waiting for room."""
        if not job.held_on:
            return
        for bind in job.held_on:
            with bind.lock:
                bind.settling -= 1
        job.held_on.clear()
        if self._wanting_room:
            self._wake_for_room({})

    def _write_due(
        self,
        waiting: _Waiting,
        inflight: dict[int, _Inflight],
        replies: queue.Queue[list[_Reply]],
        done: list[_MessageJob],
    ) -> bool:
        """Write the due parts that fit in their bind's window; True when some had to wait for room.
        Messages that this leaves with no part to wait for go to ``done``."""
        with self._filling:
            # Registered before the windows are measured, so an answer that frees room after that still
            # finds this sender to wake.
            with self._room_lock:
                self._wanting_room.add(replies)
            blocked = self._fill_windows(waiting, inflight, replies, done, budget=self._budget(waiting))
            if not blocked:
                with self._room_lock:
                    self._wanting_room.discard(replies)
            return blocked

    def _budget(self, waiting: _Waiting) -> int | None:
        """How many PDUs the rate limit lets us write now (None: no limit). Asks the pacer only for what the
        windows have room for, so a reserved slot is not wasted on parts that could not go out."""
        if self.pacer is None:
            return None
        now = time.monotonic()
        due = waiting.due(now)
        room = sum(self.window - bind.in_use() for bind in self._binds if bind.bound.is_set())
        room += waiting.taking_over(now)
        wanted = min(due, room)
        return self.pacer(wanted) if wanted > 0 else 0

    def _wake_for_room(self, answered: Mapping[int, Any]) -> None:
        """Answers freed window room: wake the senders waiting for it that got no answer of their own."""
        with self._room_lock:
            woken, self._wanting_room = self._wanting_room, set()
        for replies in woken:
            if id(replies) not in answered:
                replies.put([])

    def _fill_windows(
        self,
        waiting: _Waiting,
        inflight: dict[int, _Inflight],
        replies: queue.Queue[list[_Reply]],
        done: list[_MessageJob],
        *,
        budget: int | None = None,
    ) -> bool:
        """Hand the due parts to binds with room, at most ``budget`` of them; True when some must wait.

        A part whose message already holds a slot of the bind (an answered part, a throttled one waiting for
        its retry) takes that slot over: a message never waits for room it holds itself."""
        now = time.monotonic()
        room: dict[int, int] = {}
        batches: dict[int, tuple[_Bind, list[_PartTask]]] = {}
        blocked: list[_PartTask] = []

        def place(task: _PartTask) -> bool:
            """Put one part in its bind's batch, or in ``blocked``; False when nothing more fits anywhere."""
            nonlocal budget
            job = task.job
            if job.refusals:
                self._give_up(task, "skipped", done)  # the message already failed: stop spending parts
                return True
            bind = job.bind if job.bind is not None and job.bind.bound.is_set() else self._pick_bind()
            if bind is None:
                self._give_up(task, "unwritten", done)
                return True
            job.bind = bind
            if bind.index not in room:
                room[bind.index] = self.window - bind.in_use()
            if budget is not None and budget <= 0:
                blocked.append(task)  # the rate limit's slot is used up: the next one is asked for
                return False
            if bind in job.held_on:
                with bind.lock:
                    job.held_on.remove(bind)
                    bind.settling -= 1  # its pending PDU will hold the slot instead
            elif room[bind.index] <= 0:
                blocked.append(task)
                # Every window full: the rest waits for answers.
                return not (len(room) == len(self._binds) and all(r <= 0 for r in room.values()))
            else:
                room[bind.index] -= 1
            if budget is not None:
                budget -= 1
            batches.setdefault(bind.index, (bind, []))[1].append(task)
            return True

        # Every due retry is looked at (they are few, and one may take over its message's slot), then the
        # first attempts in order while there is room.
        while (retry := waiting.pop_retry(now)) is not None:
            if not place(retry) and budget is not None and budget <= 0:
                break
        while (budget is None or budget > 0) and (task := waiting.pop_fresh()) is not None:
            if not place(task):
                break
        for task in blocked:
            waiting.push(task)
        # Parts left for want of rate-limit tokens wait like parts left for want of room.
        starved = budget is not None and budget <= 0 and waiting.due(now) > 0
        for bind, tasks in batches.values():
            for task, written in zip(tasks, self._write(bind, tasks, replies), strict=True):
                if written is None:
                    self._give_up(task, "unwritten", done)
                else:
                    task.job.part_state[task.part] = "inflight"
                    inflight[written.token] = written
        return bool(blocked) or starved

    @staticmethod
    def _give_up(task: _PartTask, state: str, done: list[_MessageJob]) -> None:
        """A part that will not be written ("skipped", "unwritten"); its message may be finished by that."""
        task.job.part_state[task.part] = state
        if task.job.done():
            done.append(task.job)

    def _record_handing(self, tasks: Sequence[_PartTask]) -> bool:
        """Tell ``on_handing`` which messages get their first part written now; False when it could not
        record that (the parts are then not written: nothing unrecorded reaches the SMSC)."""
        fresh = {id(task.job): task.job for task in tasks if not task.job.handed}
        if self.on_handing is None or not fresh:
            return True
        try:
            self.on_handing([job.message.message_id for job in fresh.values()])
        except Exception:
            log.exception("could not record %d message(s) as handed over; not writing them", len(fresh))
            return False
        for job in fresh.values():
            job.handed = True
        return True

    def _submit_sm(self, sequence: int, task: _PartTask) -> bytes:
        job = task.job
        return self._submit_sm_writer.submit_sm(
            sequence,
            destination=job.destination,
            esm_class=job.split.esm_class,
            data_coding=job.split.data_coding,
            short_message=job.split.parts[task.part].short_message,
        )

    def _write(
        self, bind: _Bind, tasks: list[_PartTask], replies: queue.Queue[list[_Reply]]
    ) -> list[_Inflight | None]:
        """Build the parts' submit_sm and write them together; per part, what to wait for (None: not
        written, so it cannot have reached the SMSC)."""
        with bind.lock:
            client, generation = bind.client, bind.generation
        if client is None:
            return [None] * len(tasks)
        sequences = [client.next_sequence() for _ in tasks]
        octets = [self._submit_sm(sequence, task) for sequence, task in zip(sequences, tasks, strict=True)]
        if not self._record_handing(tasks):  # the last step before the write
            return [None] * len(tasks)
        items = [
            _Pending(token=next(self._tokens), replies=replies, job=task.job if task.job.early else None)
            for task in tasks
        ]
        with bind.lock:
            if bind.generation != generation:
                return [None] * len(tasks)  # the link changed under us: nothing was written on it
            for sequence, item in zip(sequences, items, strict=True):
                bind.pending[sequence] = item  # registered first: the answer may beat the write's return
            bind.peak_outstanding = max(bind.peak_outstanding, len(bind.pending))
        written = len(octets)
        try:
            client.send_octets("submit_sm", octets)
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
            # The PDUs wholly written before the break are at the SMSC (their answers may still come, or
            # _drop reports them lost); of the rest at most a fragment went out, which the SMSC cannot act on.
            written = exc.complete if isinstance(exc, _WriteFailed) else 0
            with bind.lock:
                for sequence in sequences[written:]:
                    bind.pending.pop(sequence, None)
            self._drop(bind, reason=f"write failed: {exc!r}", generation=generation)
        deadline = time.monotonic() + self.pdu_timeout
        if log.isEnabledFor(logging.DEBUG):
            for task, sequence in zip(tasks[:written], sequences, strict=False):
                log.debug(
                    "message %d part %d/%d -> %s (bind %d, seq %d)",
                    task.job.message.message_id,
                    task.part + 1,
                    len(task.job.part_state),
                    mask_address(task.job.message.address),
                    bind.index,
                    sequence,
                )
        return [
            _Inflight(token=item.token, task=task, bind=bind, sequence=sequence, deadline=deadline)
            if index < written
            else None
            for index, (task, sequence, item) in enumerate(zip(tasks, sequences, items, strict=True))
        ]

    def _apply(
        self,
        reply: _Reply,
        inflight: dict[int, _Inflight],
        waiting: _Waiting,
        seq: Iterator[int],
    ) -> _MessageJob | None:
        """Apply one answer; returns the message when every part of it is now answered."""
        entry = inflight.pop(reply.token, None)
        if entry is None:
            return None  # already expired or already answered
        job = entry.task.job
        self._apply_answer(reply, entry.task, waiting, seq)
        return job if job.done() else None

    def _apply_answer(self, reply: _Reply, task: _PartTask, waiting: _Waiting, seq: Iterator[int]) -> None:
        job = task.job
        if reply.kind == "lost":
            job.part_state[task.part] = "unknown"
            return
        if reply.status == ESME_ROK:
            job.part_state[task.part] = "ok"
            job.part_ids[task.part] = receipts.normalize_id(reply.provider_id) or ""
            return
        if reply.status in _THROTTLE_STATUSES and task.attempt <= self.throttle_retries and not job.refusals:
            delay = min(self.throttle_backoff * 2 ** (task.attempt - 1), self.throttle_backoff_max)
            job.part_state[task.part] = "new"
            waiting.push(_PartTask(time.monotonic() + delay, next(seq), job, task.part, task.attempt + 1))
            return
        job.part_state[task.part] = "refused"
        job.refusals[task.part + 1] = reply.status
        log.info(
            "message %d part %d to %s refused: %s",
            job.message.message_id,
            task.part + 1,
            mask_address(job.message.address),
            status_name(reply.status),
        )

    def _result(self, job: _MessageJob) -> SendResult:
        message_id = job.message.message_id
        total = len(job.part_state)
        states = job.part_state
        if all(state == "ok" for state in states):
            return SendResult.sent(message_id, *(pid or "" for pid in job.part_ids))
        accepted_parts = {n + 1: pid or "" for n, pid in enumerate(job.part_ids) if states[n] == "ok"}
        accepted = [f"{n}={pid}" for n, pid in accepted_parts.items()]
        accepted_text = f"; parts accepted: {', '.join(accepted)}" if accepted else ""

        def failed(error: ChannelError) -> SendResult:
            # A retry sends only the parts not accepted, under this reference: no orphan, no duplicate part.
            reference = job.split.reference if accepted_parts else None
            return SendResult.failed(
                message_id, error, accepted_parts=accepted_parts, sms_reference=reference
            )

        if job.refusals:
            # Answers come back out of order (gotcha 3): report the first part in message order.
            number = min(job.refusals)
            status = job.refusals[number]
            refused = ", ".join(f"{n}={status_name(s)}" for n, s in sorted(job.refusals.items()))
            detail = f"part {number}/{total} refused (refused: {refused}){accepted_text}"
            if accepted:
                detail += " (the handset may show a fragment)"
            error = classify(status, detail=detail)
            if isinstance(error, Throttled):
                error.retry_after = self.throttle_backoff_max
            return failed(error)
        unknown = [n + 1 for n, state in enumerate(states) if state == "unknown"]
        if unknown:
            detail = f"part(s) {unknown} of {total} unanswered{accepted_text}"
            return failed(
                OutcomeUnknown("SMSC may have the message: no answer after the write", detail=detail)
            )
        # Parts never written (the link was down): a retry sends them, and only them.
        unwritten = [n + 1 for n, state in enumerate(states) if state == "unwritten"]
        unwritten_detail = f"part(s) {unwritten} of {total} not written{accepted_text}" if accepted else None
        return failed(
            ConnectionLost(
                f"no SMPP bind to {self.host}:{self.port}: message not written", detail=unwritten_detail
            )
        )

    # ------------------------------------------------------------------ events
    def parse_events(self, raw: Mapping[str, Any]) -> list[DeliveryEvent]:
        """A stored deliver_sm record -> its one normalised event (receipt or inbound message)."""
        return [receipts.parse_deliver_sm(raw)]
