"""A small SMSC built on smpp34, for the sandbox, the demo and the tests (optional extra ``sandbox``).

It accepts any bind, answers every submit_sm (accept, throttle, or reject per destination), writes one JSON
line per submit_sm to ``<folder>/sms.jsonl``, and sends delivery receipts and mobile-originated messages back
as deliver_sm. Its switches (``SmscBehaviour``) reproduce what real Vietnamese SMSCs do to an ESME: receipts
before the submit_sm_resp is stored, hex or decimal ids (and a different form in the receipt), receipts only in
the text or only in TLVs, duplicate and unknown-id receipts, ESME_RTHROTTLED, rejected and undeliverable
numbers (docs/peers.md "SMPP server peer").

smpp34 1.5.0 cannot close a session from the server side (``Server.stop()`` leaves bound sessions open), and
hides enquire_link. So by default clients talk to a thin TCP relay in front of smpp34: it counts the PDUs each
client sends (enquire_link included), closes connections that stay silent past ``idle_timeout`` like a real
SMSC, and can drop every connection at once (``drop_connections()``, ``stop()``). ``relay=False`` talks to
smpp34 directly (a little faster; ``stop()`` then unbinds the sessions instead of cutting them).

Everything runs in one asyncio loop on its own thread: ``start()`` returns ``(host, port)``, ``stop()``
ends it; the received records are kept in memory for tests (``submits``, ``delivers``, ``reassembled()``).

smpp34 settles each call's future from one of its tokio threads, under the GIL. A call cancelled from Python
still takes the GIL later on that thread, and if the interpreter is exiting by then the process aborts
(``Fatal Python error: PyGILState_Release``). So no smpp34 call is ever cancelled here: ``_call`` waits with
a timeout that leaves the call running, the event pump ends on an event (a session of our own binds), and
``stop()`` returns only when every call has settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import smpp34

from channels.sms.encoding import Encoding, decode_gsm7, detect_encoding, split, unaccent

__all__ = [
    "ConnectionInfo",
    "DeliverRecord",
    "MoMessage",
    "ReassembledMessage",
    "SandboxSmsc",
    "SmscBehaviour",
    "SubmitRecord",
    "parse_udh",
    "run_smsc",
]

log = logging.getLogger(__name__)

ReceiptStyle = Literal["text", "tlv", "both"]
IdStyle = Literal["decimal", "hex", "uuid"]
ReceiptIdForm = Literal["as_issued", "decimal", "hex"]

# SMPP v3.4 §5.1.2.1 command_id values the relay watches in the client -> SMSC direction.
_ENQUIRE_LINK = 0x00000015
_DELIVER_SM_RESP = 0x80000005
# SMPP v3.4 §5.3.2 TLV tags used in receipts.
_TLV_RECEIPTED_MESSAGE_ID = 0x001E
_TLV_MESSAGE_STATE = 0x0427
_TLV_NETWORK_ERROR_CODE = 0x0423
_TLV_VENDOR_SANDBOX = 0x1400  # vendor-specific range 0x1400-0x3FFF (§5.3.2): exercises unknown-TLV handling
# SMPP v3.4 §5.2.12 esm_class.
_ESM_RECEIPT = 0x04
_ESM_UDHI = 0x40

# The system_id of the session the SMSC binds to itself at shutdown, to end its event pump by an event.
_WAKE_UP = "sandbox-stop"
# How long shutdown waits for smpp34 calls to settle. With the relay every session is cut and they settle at
# once; without it a client that neither answers the unbind nor disconnects keeps its unbind call open.
_SETTLE_TIMEOUT = 5.0

T = TypeVar("T")

# Process-wide id counter: a restarted SMSC on the same port must not reissue ids a test still holds.
_ID_COUNTER = itertools.count(0x10000000 + (int(time.time()) % 0x100000) * 0x100)


@dataclass(frozen=True, slots=True)
class MoMessage:
    """A mobile-originated message to inject: a citizen writes ``text`` from ``sender`` to ``recipient``."""

    sender: str
    recipient: str
    text: str


@dataclass(frozen=True, slots=True)
class SmscBehaviour:
    """The switches of the sandbox SMSC. The defaults behave like a well-mannered SMSC."""

    receipts: bool = True  # send a receipt for every accepted part that asked for one (registered_delivery)
    receipt_delay: float = 0.0  # seconds; 0 = immediately, possibly before the ESME stored submit_sm_resp
    receipt_style: ReceiptStyle = "both"  # Appendix B text, TLVs 0x001E/0x0427, or both
    message_id_style: IdStyle = "hex"  # hex ids are upper-case, as many SMSCs send them
    receipt_id_form: ReceiptIdForm = "as_issued"  # write the id in the other base in receipts
    duplicate_receipts: bool = False  # send each receipt twice
    unknown_id_receipts: bool = False  # after each receipt, one for an id we never issued
    throttle_every: int = 0  # answer throttle_status to every Nth submit_sm (0 = never)
    throttle_tps: float = 0.0  # answer throttle_status above this many accepted submit_sm per second
    throttle_status: int = 0x58  # ESME_RTHROTTLED (or 0x14 ESME_RMSGQFUL)
    reject: Mapping[str, int] = field(default_factory=dict)  # destination -> command_status
    undeliverable: frozenset[str] = frozenset()  # destinations whose receipt says stat:UNDELIV
    mo_messages: tuple[MoMessage, ...] = ()  # sent once to the first session that binds as a receiver
    redeliver_attempts: int = 2  # resend a deliver_sm answered with an error (e.g. 0x64) this many times
    redeliver_delay: float = 0.05
    deliver_timeout: float = 5.0  # seconds to wait for a deliver_sm_resp
    vendor_tlv: bool = True  # add a vendor TLV to receipts, as real SMSCs do (smpplib gotcha 5)
    idle_timeout: float | None = None  # close a connection silent this long (relay only)
    relay: bool = True  # put the TCP relay in front of smpp34 (see module docstring)
    system_id: str = "SANDBOX"


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """One received submit_sm, as written to sms.jsonl."""

    time: str
    system_id: str
    session_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    udh_reference: int | None
    udh_total: int | None
    udh_number: int | None
    text: str
    short_message_hex: str
    message_id: str | None
    status: int  # command_status we answered (0 = accepted)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeliverRecord:
    """One deliver_sm attempt and the ESME's answer (``command_status`` None: no answer in time)."""

    time: str
    session_id: str
    kind: Literal["receipt", "mo"]
    receipted_id: str | None  # the id written into the receipt (receipts only)
    stat: str | None
    attempt: int
    command_status: int | None
    answered_at: float  # time.monotonic() when the answer (or the timeout) came


@dataclass(slots=True)
class ConnectionInfo:
    """What the relay saw of one client connection."""

    peer: str
    opened_at: float
    pdus: int = 0
    enquire_links: int = 0
    last_rx: float = 0.0
    closed_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReassembledMessage:
    """Accepted parts of one message put back together (by source, destination, reference and total)."""

    source: str
    destination: str
    reference: int | None
    total: int
    parts: tuple[SubmitRecord, ...]

    @property
    def complete(self) -> bool:
        return len(self.parts) == self.total and [p.udh_number or 1 for p in self.parts] == list(
            range(1, self.total + 1)
        )

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts)

    @property
    def message_ids(self) -> tuple[str, ...]:
        return tuple(p.message_id or "" for p in self.parts)


def parse_udh(short_message: bytes) -> tuple[int | None, int | None, int | None, bytes]:
    """``(reference, total, number, payload)`` of a short_message that starts with a UDH.

    Reads the concatenation IEs of 3GPP TS 23.040 §9.2.3.24.1 (IEI 0x00, 8-bit reference) and
    §9.2.3.24.8 (IEI 0x08, 16-bit reference); other IEs are skipped.
    """
    if not short_message:
        return None, None, None, short_message
    udhl = short_message[0]
    header, payload = short_message[1 : 1 + udhl], short_message[1 + udhl :]
    reference = total = number = None
    pos = 0
    while pos + 2 <= len(header):
        iei, length = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + length]
        if iei == 0x00 and length == 3:
            reference, total, number = value[0], value[1], value[2]
        elif iei == 0x08 and length == 4:
            reference, total, number = (value[0] << 8) | value[1], value[2], value[3]
        pos += 2 + length
    return reference, total, number, payload


def _decode(payload: bytes, data_coding: int) -> str:
    # SMPP v3.4 §5.2.19: 0x08 UCS-2 (read as UTF-16-BE), 0x00 SMSC default alphabet (GSM 03.38 unpacked).
    if data_coding == 0x08:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding == 0x00:
        try:
            return decode_gsm7(payload)
        except (ValueError, KeyError, IndexError):
            return payload.decode("latin-1")
    return payload.decode("latin-1")


def _smpp_date(moment: datetime) -> str:
    """Appendix B date format YYMMDDhhmm (the sandbox's clock is UTC)."""
    return moment.strftime("%y%m%d%H%M")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SandboxSmsc:
    """The sandbox SMSC. Thread-safe start/stop; records readable from any thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        folder: str | Path | None = None,
        behaviour: SmscBehaviour | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.folder = Path(folder) if folder is not None else None
        self.behaviour = behaviour or SmscBehaviour()
        self._cond = threading.Condition()
        self._submits: list[SubmitRecord] = []
        self._delivers: list[DeliverRecord] = []
        self._connections: list[ConnectionInfo] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        # Loop-thread state.
        self._sessions: dict[str, smpp34.Esme] = {}
        self._relay_writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # smpp34 calls not settled yet, and what each is (see the module docstring).
        self._calls: dict[asyncio.Future[Any], str] = {}
        self._stopping = False
        self._submit_count = 0
        self._accept_times: deque[float] = deque()
        self._mo_sent = False
        self._jsonl: Any = None

    # ------------------------------------------------------------------ public, any thread
    def start(self) -> tuple[str, int]:
        """Start serving in a background thread; returns the address clients should connect to."""
        if self._thread is not None:
            raise RuntimeError("SandboxSmsc already started")
        if self.port == 0:
            self.port = _free_port(self.host)
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name=f"sandbox-smsc-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("sandbox SMSC did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(
                f"sandbox SMSC could not start: {self._startup_error}"
            ) from self._startup_error
        log.info("sandbox SMSC listening on %s:%d", self.host, self.port)
        return self.host, self.port

    def stop(self) -> None:
        """Drop every connection and stop serving. Idempotent."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished on its own
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(15)
        self._thread = None
        log.info("sandbox SMSC on %s:%d stopped", self.host, self.port)

    def drop_connections(self) -> None:
        """Cut every client connection now (a network failure); the SMSC keeps listening."""
        self._call_in_loop(self._abort_relay_connections)

    def inject_mo(self, sender: str, recipient: str, text: str) -> None:
        """Send one mobile-originated message to a bound session."""
        message = MoMessage(sender=sender, recipient=recipient, text=text)
        self._call_in_loop(lambda: self._spawn(self._send_mo(message)))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def submits(self) -> list[SubmitRecord]:
        """Every submit_sm received so far (accepted or not), in arrival order."""
        with self._cond:
            return list(self._submits)

    @property
    def accepted(self) -> list[SubmitRecord]:
        with self._cond:
            return [r for r in self._submits if r.status == 0]

    @property
    def delivers(self) -> list[DeliverRecord]:
        """Every deliver_sm attempt and its answer, in the order the answers came."""
        with self._cond:
            return list(self._delivers)

    @property
    def connections(self) -> list[ConnectionInfo]:
        """Client connections seen by the relay (empty with ``relay=False``)."""
        with self._cond:
            return list(self._connections)

    @property
    def bound_sessions(self) -> int:
        with self._cond:
            return len(self._sessions)

    def wait_until(self, predicate: Callable[[SandboxSmsc], object], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every new record) or the timeout passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))
        return True

    def reassembled(self) -> list[ReassembledMessage]:
        """Accepted parts grouped into messages, in order of each message's first part."""
        groups: dict[tuple[str, str, int | None, int], dict[int, SubmitRecord]] = {}
        singles: list[ReassembledMessage] = []
        order: list[tuple[str, str, int | None, int] | ReassembledMessage] = []
        for record in self.accepted:
            if record.udh_total is None or record.udh_total <= 1:
                single = ReassembledMessage(record.source, record.destination, None, 1, (record,))
                singles.append(single)
                order.append(single)
                continue
            key = (record.source, record.destination, record.udh_reference, record.udh_total)
            if key not in groups:
                groups[key] = {}
                order.append(key)
            groups[key][record.udh_number or 0] = record  # a retried part replaces the earlier one
        result: list[ReassembledMessage] = []
        for item in order:
            if isinstance(item, ReassembledMessage):
                result.append(item)
            else:
                parts = tuple(groups[item][n] for n in sorted(groups[item]))
                result.append(ReassembledMessage(item[0], item[1], item[2], item[3], parts))
        return result

    # ------------------------------------------------------------------ loop thread
    def _call_in_loop(self, func: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("sandbox SMSC is not running")
        loop.call_soon_threadsafe(func)

    def _spawn(self, coro: Any) -> None:
        if self._stopping:  # no new receipts or MO once the stop began: they would start new smpp34 calls
            coro.close()
            return
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, what: str, call: Awaitable[T], timeout: float | None = None) -> T:
        """Await an smpp34 call; on timeout raise TimeoutError but leave the call running (never cancel it)."""
        future: asyncio.Future[T] = asyncio.ensure_future(call)
        self._calls[future] = what
        future.add_done_callback(self._settled)
        done, _pending = await asyncio.wait({future}, timeout=timeout)
        if not done:
            raise TimeoutError(f"no answer within {timeout} s")
        return future.result()

    def _settled(self, future: asyncio.Future[Any]) -> None:
        self._calls.pop(future, None)
        if not future.cancelled():
            future.exception()  # retrieved: a call that timed out and failed later is not an error to log

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except OSError as exc:  # bind failure before ready: report it to start()
            self._startup_error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        behaviour = self.behaviour
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._jsonl = (self.folder / "sms.jsonl").open("a", encoding="utf-8")
        smsc_port = _free_port(self.host) if behaviour.relay else self.port
        server = smpp34.Server(self.host, smsc_port, system_id=behaviour.system_id)
        relay: asyncio.Server | None = None
        pump: asyncio.Task[None] | None = None
        try:
            try:
                await self._call("start", server.start())
                if behaviour.relay:
                    relay = await asyncio.start_server(
                        lambda r, w: self._relay_client(r, w, smsc_port), self.host, self.port
                    )
            except (OSError, smpp34.SmppError) as exc:
                self._startup_error = exc
                self._ready.set()
                return
            self._ready.set()
            pump = asyncio.create_task(self._pump(server))
            await self._stop_event.wait()
        finally:
            await self._shutdown(server, relay, pump, smsc_port)

    async def _shutdown(
        self,
        server: smpp34.Server,
        relay: asyncio.Server | None,
        pump: asyncio.Task[None] | None,
        smsc_port: int,
    ) -> None:
        self._stopping = True
        if relay is not None:
            relay.close()
            self._abort_relay_connections()
        else:
            for esme in list(self._sessions.values()):
                with contextlib.suppress(TimeoutError, smpp34.SmppError, OSError):
                    await self._call("unbind", esme.unbind(), 1.0)
        if pump is not None:
            await self._end_pump(pump, smsc_port)
        for task in list(self._tasks):
            task.cancel()  # our own tasks: a call one of them waits for goes on and settles by itself
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(smpp34.SmppError, OSError):
            await self._call("stop", server.stop())
        if self._calls:
            _done, pending = await asyncio.wait(set(self._calls), timeout=_SETTLE_TIMEOUT)
            if pending:
                names = sorted(self._calls.get(f, "?") for f in pending)
                log.warning("sandbox SMSC: smpp34 calls did not settle before the stop: %s", ", ".join(names))
        with self._cond:
            self._sessions.clear()
            self._cond.notify_all()
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None

    async def _pump(self, server: smpp34.Server) -> None:
        while True:
            event = await self._call("next", server.next())
            if isinstance(event, smpp34.SubmitSmEvent):
                self._on_submit(event)
            elif isinstance(event, smpp34.Esme) and event.system_id == _WAKE_UP:
                return  # stopping: no next() is left waiting (see the module docstring)
            elif isinstance(event, smpp34.Esme):
                log.info("sandbox SMSC: %s bound (session %s)", event.system_id, event.session_id)
                with self._cond:
                    self._sessions[event.session_id] = event
                    self._cond.notify_all()
                if self.behaviour.mo_messages and not self._mo_sent and event.can_receive:
                    self._mo_sent = True
                    for message in self.behaviour.mo_messages:
                        self._spawn(self._send_mo(message))
            elif isinstance(event, smpp34.Unbound):
                log.info("sandbox SMSC: session %s ended", event.session_id)
                with self._cond:
                    self._sessions.pop(event.session_id, None)
                    self._cond.notify_all()

    async def _end_pump(self, pump: asyncio.Task[None], port: int) -> None:
        """End the event pump by an event: bind a session of our own, which the pump takes as the stop."""
        if not pump.done():
            client = smpp34.Client(self.host, port, _WAKE_UP, "", connect_timeout_ms=5000)
            try:
                session = await self._call("wake-up connect", client.connect(), 10.0)
            except (TimeoutError, smpp34.SmppError, OSError) as exc:
                log.warning("sandbox SMSC: could not end the event pump by a session of its own: %r", exc)
            else:
                await asyncio.wait({pump}, timeout=_SETTLE_TIMEOUT)
                with contextlib.suppress(TimeoutError, smpp34.SmppError, OSError):
                    await self._call("wake-up unbind", session.unbind(), 5.0)
        if not pump.done():  # the last resort: the old way
            pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, smpp34.SmppError, OSError):
            await pump

    def _new_message_id(self) -> str:
        style = self.behaviour.message_id_style
        if style == "uuid":
            return str(uuid.uuid4())
        number = next(_ID_COUNTER)
        return str(number) if style == "decimal" else format(number, "X")

    def _decide(self, destination: str) -> int:
        """The command_status for the next submit_sm: reject map, then throttling, else 0."""
        behaviour = self.behaviour
        if destination in behaviour.reject:
            return behaviour.reject[destination]
        self._submit_count += 1
        if behaviour.throttle_every and self._submit_count % behaviour.throttle_every == 0:
            return behaviour.throttle_status
        if behaviour.throttle_tps > 0:
            now = time.monotonic()
            while self._accept_times and now - self._accept_times[0] > 1.0:
                self._accept_times.popleft()
            if len(self._accept_times) >= behaviour.throttle_tps:
                return behaviour.throttle_status
            self._accept_times.append(now)
        return 0

    def _on_submit(self, event: smpp34.SubmitSmEvent) -> None:
        short_message = event.short_message
        if event.esm_class & _ESM_UDHI:
            reference, total, number, payload = parse_udh(short_message)
        else:
            reference, total, number, payload = self._sar(event.tlvs, short_message)
        status = self._decide(event.destination_addr)
        message_id = self._new_message_id() if status == 0 else None
        if message_id is not None:
            event.accept(message_id)
        else:
            event.reject(status)
        esme = self._sessions.get(event.session_id)
        record = SubmitRecord(
            time=_now_iso(),
            system_id=esme.system_id if esme is not None else "",
            session_id=event.session_id,
            source=event.source_addr,
            destination=event.destination_addr,
            data_coding=event.data_coding,
            esm_class=event.esm_class,
            registered_delivery=event.registered_delivery,
            udh_reference=reference,
            udh_total=total,
            udh_number=number,
            text=_decode(payload, event.data_coding),
            short_message_hex=short_message.hex(),
            message_id=message_id,
            status=status,
        )
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            self._jsonl.flush()
        with self._cond:
            self._submits.append(record)
            self._cond.notify_all()
        # registered_delivery bits 1-0 (SMPP v3.4 §5.2.17): 01 = receipt on success or failure, 10 = on failure.
        wanted = event.registered_delivery & 0x03
        undeliverable = event.destination_addr in self.behaviour.undeliverable
        if (
            message_id is not None
            and self.behaviour.receipts
            and (wanted == 1 or (wanted == 2 and undeliverable))
        ):
            self._spawn(self._send_receipts(record))

    @staticmethod
    def _sar(
        tlvs: list[smpp34.Tlv], short_message: bytes
    ) -> tuple[int | None, int | None, int | None, bytes]:
        """Concatenation by SAR TLVs 0x020C/0x020E/0x020F (SMPP v3.4 §5.3.2.22-24) instead of a UDH."""
        values = {tlv.tag: tlv.as_int() for tlv in tlvs if tlv.tag in (0x020C, 0x020E, 0x020F)}
        if len(values) < 3:
            return None, None, None, short_message
        return values[0x020C], values[0x020E], values[0x020F], short_message

    # ------------------------------------------------------------------ deliver_sm (receipts, MO)
    def _receipt_id(self, message_id: str) -> str:
        form = self.behaviour.receipt_id_form
        if form == "as_issued" or self.behaviour.message_id_style == "uuid":
            return message_id
        number = int(message_id, 16) if self.behaviour.message_id_style == "hex" else int(message_id)
        return str(number) if form == "decimal" else format(number, "X")

    async def _send_receipts(self, record: SubmitRecord) -> None:
        behaviour = self.behaviour
        if behaviour.receipt_delay > 0:
            await asyncio.sleep(behaviour.receipt_delay)
        if record.message_id is None:  # only accepted parts get receipts
            return
        receipt_id = self._receipt_id(record.message_id)
        copies = 2 if behaviour.duplicate_receipts else 1
        for _ in range(copies):
            await self._send_receipt(record, receipt_id)
        if behaviour.unknown_id_receipts:
            await self._send_receipt(record, "FFFF" + uuid.uuid4().hex[:8].upper())

    async def _send_receipt(self, record: SubmitRecord, receipt_id: str) -> None:
        behaviour = self.behaviour
        now = datetime.now(UTC)
        undeliverable = record.destination in behaviour.undeliverable
        # SMPP v3.4 Appendix B stat words and §5.2.28 message_state: DELIVRD = 2, UNDELIV = 5.
        stat, state, err = ("UNDELIV", 5, "001") if undeliverable else ("DELIVRD", 2, "000")
        short_message = b""
        if behaviour.receipt_style in ("text", "both"):
            excerpt = unaccent(record.text)[:20].encode("ascii", errors="replace").decode("ascii")
            text = (
                f"id:{receipt_id} sub:001 dlvrd:{'000' if undeliverable else '001'} "
                f"submit date:{_smpp_date(now)} done date:{_smpp_date(now)} stat:{stat} err:{err} text:{excerpt}"
            )
            short_message = text.encode("ascii")
        tlvs: list[smpp34.Tlv] = []
        if behaviour.receipt_style in ("tlv", "both"):
            tlvs.append(smpp34.Tlv(_TLV_RECEIPTED_MESSAGE_ID, receipt_id.encode("ascii") + b"\x00"))
            tlvs.append(smpp34.Tlv(_TLV_MESSAGE_STATE, bytes((state,))))
            if undeliverable:
                # §5.3.2.31 network_error_code: network type 3 (GSM) + 2-octet error code.
                tlvs.append(smpp34.Tlv(_TLV_NETWORK_ERROR_CODE, b"\x03\x00\x01"))
        if behaviour.vendor_tlv:
            tlvs.append(smpp34.Tlv(_TLV_VENDOR_SANDBOX, b"sandbox"))
        await self._deliver(
            preferred_session=record.session_id,
            system_id=record.system_id,
            kind="receipt",
            receipted_id=receipt_id,
            stat=stat,
            destination_addr=record.source,
            short_message=short_message,
            source_addr=record.destination,
            esm_class=_ESM_RECEIPT,
            data_coding=0,
            tlvs=tlvs,
        )

    async def _send_mo(self, message: MoMessage) -> None:
        encoding = detect_encoding(message.text)
        parts = split(message.text, reference=next(_ID_COUNTER) & 0xFF, encoding=encoding)
        for part in parts.parts:
            await self._deliver(
                preferred_session=None,
                system_id=None,
                kind="mo",
                receipted_id=None,
                stat=None,
                destination_addr=message.recipient,
                short_message=part.short_message,
                source_addr=message.sender,
                source_addr_ton=1,
                source_addr_npi=1,
                esm_class=parts.esm_class,
                data_coding=parts.data_coding if encoding is Encoding.UCS2 else 0,
            )

    def _pick_session(self, preferred: str | None, system_id: str | None) -> smpp34.Esme | None:
        """The submitting session if still bound, else any receiver with the same system_id, else any."""
        with self._cond:
            sessions = dict(self._sessions)
        if preferred is not None and preferred in sessions and sessions[preferred].can_receive:
            return sessions[preferred]
        receivers = [s for s in sessions.values() if s.can_receive]
        same = [s for s in receivers if system_id is None or s.system_id == system_id]
        candidates = same or receivers
        return candidates[0] if candidates else None

    async def _deliver(
        self,
        *,
        preferred_session: str | None,
        system_id: str | None,
        kind: Literal["receipt", "mo"],
        receipted_id: str | None,
        stat: str | None,
        destination_addr: str,
        short_message: bytes,
        **fields: Any,
    ) -> None:
        behaviour = self.behaviour
        for attempt in range(1, behaviour.redeliver_attempts + 2):
            if self._stopping:
                return
            esme = self._pick_session(preferred_session, system_id)
            if esme is None:
                log.warning("sandbox SMSC: no bound receiver for a %s; dropped", kind)
                return
            status: int | None
            try:
                resp = await self._call(
                    "deliver_sm",
                    esme.deliver_sm(destination_addr, short_message, **fields),
                    behaviour.deliver_timeout,
                )
                status = resp.command_status
            except (TimeoutError, smpp34.SmppError, OSError) as exc:
                log.warning("sandbox SMSC: deliver_sm to %s got no answer: %r", esme.session_id, exc)
                status = None
            record = DeliverRecord(
                time=_now_iso(),
                session_id=esme.session_id,
                kind=kind,
                receipted_id=receipted_id,
                stat=stat,
                attempt=attempt,
                command_status=status,
                answered_at=time.monotonic(),
            )
            with self._cond:
                self._delivers.append(record)
                self._cond.notify_all()
            if status == 0:
                return
            await asyncio.sleep(behaviour.redeliver_delay)

    # ------------------------------------------------------------------ the relay
    def _abort_relay_connections(self) -> None:
        for writer in list(self._relay_writers):
            writer.transport.abort()
        self._relay_writers.clear()

    async def _relay_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])
        info = ConnectionInfo(peer=peer, opened_at=time.monotonic(), last_rx=time.monotonic())
        with self._cond:
            self._connections.append(info)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, port)
        except OSError:
            writer.transport.abort()
            return
        self._relay_writers.update((writer, up_writer))
        tasks = [
            asyncio.create_task(self._relay_upstream(reader, up_writer, info)),
            asyncio.create_task(self._relay_downstream(up_reader, writer)),
        ]
        if self.behaviour.idle_timeout:
            tasks.append(asyncio.create_task(self._idle_watch(info, writer, self.behaviour.idle_timeout)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for w in (writer, up_writer):
                w.transport.abort()
                self._relay_writers.discard(w)
            with self._cond:
                info.closed_reason = info.closed_reason or "closed"
                self._cond.notify_all()

    async def _relay_upstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnectionInfo
    ) -> None:
        """Client -> smpp34, counting PDUs by their 16-octet header (SMPP v3.4 §3.2)."""
        buffer = bytearray()
        while chunk := await reader.read(65536):
            writer.write(chunk)
            buffer += chunk
            offset = 0
            while len(buffer) - offset >= 16:
                length, command_id = struct.unpack_from(">LL", buffer, offset)
                if length < 16 or len(buffer) - offset < length:
                    break
                offset += length
                with self._cond:
                    info.pdus += 1
                    info.last_rx = time.monotonic()
                    if command_id == _ENQUIRE_LINK:
                        info.enquire_links += 1
                    self._cond.notify_all()
            del buffer[:offset]
            await writer.drain()
        with self._cond:
            info.closed_reason = "client closed"

    @staticmethod
    async def _relay_downstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()

    async def _idle_watch(self, info: ConnectionInfo, writer: asyncio.StreamWriter, idle: float) -> None:
        while True:
            await asyncio.sleep(idle / 4)
            if time.monotonic() - info.last_rx > idle:
                log.info("sandbox SMSC: closing %s after %.1f s of silence", info.peer, idle)
                with self._cond:
                    info.closed_reason = "idle timeout"
                return


def run_smsc(
    host: str = "127.0.0.1",
    port: int = 2775,
    folder: str | Path | None = None,
    behaviour: SmscBehaviour | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C): the ``broadcaster sandbox`` command calls this."""
    smsc = SandboxSmsc(host=host, port=port, folder=folder, behaviour=behaviour)
    smsc.start()
    stopped = threading.Event()
    try:
        while not stopped.wait(1.0):
            if not smsc.running:
                break
    except KeyboardInterrupt:
        log.info("sandbox SMSC interrupted")
    finally:
        smsc.stop()
