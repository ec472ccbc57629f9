"""The SMS adapter's façade: ``SmppAdapter`` submits messages to an SMSC over SMPP v3.4 with smpplib, and passes
every deliver_sm on.

Shape (docs/architecture.md §4, SMPP paragraph; docs/peers.md smpplib gotchas 1-8):

* ``binds`` transceiver sessions (``session``), each with one reader thread that lives as long as the adapter:
  it answers enquire_link, sends one when the link is idle, reads submit_sm_resp / generic_nack and hands them
  to the sending thread by sequence number, hands every deliver_sm (receipt or MO) to ``on_inbound``
  (``inbound``) and answers it only after ``on_inbound`` returned (the engine commits the raw record inside
  it), and reconnects with back-off when the connection drops.
* smpplib has no locks (gotcha 1): socket writes and sequence numbers go under a lock (``client``). We read
  the socket ourselves into a buffer, so a read timeout never loses half a PDU, and an error status never
  reaches smpplib's raising error handler (gotcha 2; we still install a harmless one).
* ``send()`` splits each text with our splitter (``channels.sms.encoding``; never ``gsm.make_parts``, gotcha
  7), keeps at most ``window`` submit_sm outstanding per bind, correlates responses by sequence (they come back
  out of order, gotcha 3), applies a per-PDU timeout and retries throttled PDUs a few times itself
  (``submit``, with the rules in ``window``). Two ``send()`` calls may run at once (``capabilities.overlap``);
  they share the binds' windows, so the engine's next window fills the PDU window while the last one's
  answers come in.
* The PDUs of a window (submit_sm, submit_sm_resp, deliver_sm, deliver_sm_resp) are written and read as
  octets (``channels.sms.pdus``); smpplib does the binds, enquire_link and the rare PDUs.

The outcome of one message (all its parts) follows the rules in ``outcome``. A failed message whose SMSC
accepted some parts says which (``SendResult.accepted_parts``) and under which concatenation reference; the
engine keeps both and hands them back with the retry (``OutboundMessage``), which then sends only the missing
parts under that reference: a throttled part 2 never costs a second part 1.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Final

import smpplib.exceptions
import smpplib.smpp

from channels.base import (
    AdapterBase,
    Capabilities,
    Channel,
    DeliveryEvent,
    OutboundMessage,
    SendResult,
)
from channels.clock import SYSTEM_CLOCK, Clock
from channels.errors import ChannelError, ConfigurationError, ConnectionLost, PermanentError
from channels.sms import pdus, receipts, unknown_subscriber
from channels.sms.encoding import Encoding, split
from channels.sms.smpp.bind import Bind
from channels.sms.smpp.health import HealthHandler, HealthReporter
from channels.sms.smpp.inbound import InboundBatchHandler, InboundHandler, InboundHandOver
from channels.sms.smpp.outcome import result
from channels.sms.smpp.session import Session, SessionSettings
from channels.sms.smpp.submit import HandingHandler, Pacer, SettledHandler, Submitter
from channels.sms.smpp.window import MessageJob, PartState, ThrottlePolicy

log = logging.getLogger(__name__)

SEND_WINDOWS_PER_CALL: Final = 4  # PDU windows' worth of messages per send() call

# SMPP v3.4 §5.2.17 registered_delivery: 0x01 = receipt on final success or failure.
_REGISTERED_DELIVERY: Final = 0x01
# SMPP v3.4 §5.2.5/§5.2.6 TON/NPI of an E.164 destination: international (1) / ISDN E.164 (1).
_TON_INTERNATIONAL: Final = 1
_NPI_ISDN: Final = 1
_REFERENCE_MEMORY: Final = 65536  # destinations whose concatenation counter we remember (LRU)


class SmppAdapter(AdapterBase):
    """SMS over SMPP v3.4 (transceiver binds). See the module docstring for the shape, ``outcome`` for the
    outcome rules."""

    channel: ClassVar[Channel] = Channel.SMS
    capabilities: ClassVar[Capabilities] = Capabilities(
        window=64,
        receipts=True,
        max_length=None,
        overlap=2,
        settles=True,
        inbound=True,
        parses_inbound=True,
        paces=True,
        reports_health=True,
        stamps=True,
        connects_in_background=True,
        timed=True,
        gateway=True,
        peer="SMSC",
    )

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
        clock: Clock = SYSTEM_CLOCK,
        unknown_subscriber_errors: Sequence[str] | None = None,
    ) -> None:
        if binds < 1 or window < 1:
            raise ValueError("binds and window must be at least 1")
        self.host = host
        self.port = port
        self.system_id = system_id
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
        # A gateway opens in the background: when the SMSC is down at start, open() does not raise; the
        # readers keep trying, and the engine waits for a bind (wait_bound) before it claims anything.
        self.bind_in_background = bind_in_background
        # The engine hands us this many messages per send(), and two calls at once: the PDU window never
        # drains between calls, and several PDU windows' worth per call spreads the engine's claim and record
        # of each call over more messages. Not that many per bind: with four binds a call of 1,024 messages
        # made an account's chunk (2,000) two calls, which the gateway started with the wire idle while it
        # claimed the first; a call of at least a window per bind fills every bind's window as well. The
        # Protocol declares ``capabilities`` a ClassVar; an instance entry shadows it for this adapter only.
        self.__dict__["capabilities"] = replace(
            SmppAdapter.capabilities, window=window * max(binds, SEND_WINDOWS_PER_CALL)
        )
        self._clock = clock  # PDU deadlines, throttle back-off, enquire_link timing
        self._binds = [Bind(index=i) for i in range(binds)]
        self._closing = threading.Event()
        self._opened = False
        self._references: OrderedDict[str, int] = OrderedDict()
        self._reference_lock = threading.Lock()
        # Told when the SMSC becomes unreachable (since when, the error, the next attempt) and reachable again.
        self._health = HealthReporter(
            host=host,
            port=port,
            system_id=system_id,
            on_health=on_health,
            bound_count=lambda: self.bound_count,
            closing=self._closing,
        )
        # The provider's own "no such number" codes travel in each record, so a stored receipt reads the same
        # wherever and whenever it is parsed (docs/domain.md §4, "Receipts that suppress").
        stamped = (
            {}
            if unknown_subscriber_errors is None
            else {
                unknown_subscriber.RECORD_KEY: list(
                    unknown_subscriber.checked_errors(unknown_subscriber_errors)
                )
            }
        )
        self._inbound = InboundHandOver(
            system_id=system_id,
            on_inbound=on_inbound,
            on_inbound_batch=on_inbound_batch,
            record_extras=stamped,
        )
        self._submitter = Submitter(
            binds=self._binds,
            window=window,
            pdu_timeout=pdu_timeout,
            throttle=ThrottlePolicy(throttle_retries, throttle_backoff, throttle_backoff_max),
            pacer=pacer,
            on_handing=on_handing,
            submit_sm_writer=pdus.SubmitSmWriter(
                source_ton=source_ton,
                source_npi=source_npi,
                source_addr=source_addr,
                dest_ton=_TON_INTERNATIONAL,
                dest_npi=_NPI_ISDN,
                registered_delivery=_REGISTERED_DELIVERY if registered_delivery else 0,
            ),
            drop=lambda bind, reason, generation: self._sessions[bind.index].drop(
                reason=reason, generation=generation
            ),
            result=self._result,
            clock=clock,
        )
        settings = SessionSettings(
            host=host,
            port=port,
            system_id=system_id,
            password=password,
            system_type=system_type,
            connect_timeout=connect_timeout,
            enquire_link_interval=enquire_link_interval,
            reconnect_initial=reconnect_initial,
            reconnect_max=reconnect_max,
        )
        self._sessions = [
            Session(
                bind,
                settings,
                closing=self._closing,
                health=self._health,
                hand_answers=self._submitter.hand_answers,
                on_deliver_sm=self._inbound.on_deliver_sm,
                clock=clock,
            )
            for bind in self._binds
        ]

    # The engine's callbacks and the rate limit stay attributes of the adapter; the parts that use them own them.
    @property
    def on_inbound(self) -> InboundHandler | None:
        return self._inbound.on_inbound

    @on_inbound.setter
    def on_inbound(self, handler: InboundHandler | None) -> None:
        self._inbound.on_inbound = handler

    @property
    def on_inbound_batch(self) -> InboundBatchHandler | None:
        return self._inbound.on_inbound_batch

    @on_inbound_batch.setter
    def on_inbound_batch(self, handler: InboundBatchHandler | None) -> None:
        self._inbound.on_inbound_batch = handler

    @property
    def on_health(self) -> HealthHandler | None:
        return self._health.on_health

    @on_health.setter
    def on_health(self, handler: HealthHandler | None) -> None:
        self._health.on_health = handler

    @property
    def pacer(self) -> Pacer | None:
        return self._submitter.pacer

    @pacer.setter
    def pacer(self, pacer: Pacer | None) -> None:
        self._submitter.pacer = pacer

    @property
    def on_handing(self) -> HandingHandler | None:
        return self._submitter.on_handing

    @on_handing.setter
    def on_handing(self, handler: HandingHandler | None) -> None:
        self._submitter.on_handing = handler

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
        for session in self._sessions:
            try:
                session.connect()
            except ConfigurationError:
                self._shutdown_binds()
                raise
            except ChannelError as exc:
                failures.append(exc)
                self._health.report_down(exc, retry_in=self.reconnect_initial)
        if len(failures) == len(self._binds) and not self.bind_in_background:
            self._shutdown_binds()
            raise ConnectionLost(
                f"no SMPP bind to {self.host}:{self.port} succeeded", detail=str(failures[0])
            ) from failures[0]
        for session in self._sessions:
            bind = session.bind
            bind.thread = threading.Thread(
                target=session.run,
                name=f"smpp-reader-{self.system_id}-{bind.index}",
                daemon=True,
            )
            bind.thread.start()
        self._inbound.start()
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
        self._inbound.stop(max(1.0, min(self.pdu_timeout, 3.0)))
        self._shutdown_binds()
        for bind in self._binds:
            if bind.thread is not None:
                bind.thread.join(5.0)
                if bind.thread.is_alive():
                    log.warning("bind %d: reader thread did not stop within 5 s", bind.index)
                bind.thread = None
        self._opened = False

    def _shutdown_binds(self) -> None:
        for session in self._sessions:
            session.drop(reason="closed", generation=None)

    @property
    def bound_count(self) -> int:
        """How many sessions are bound right now."""
        return sum(1 for bind in self._binds if bind.bound.is_set())

    def wait_bound(self, timeout: float, *, count: int = 1) -> bool:
        """Block until at least ``count`` sessions are bound (after a reconnect, say) or the timeout passes."""
        deadline = self._clock.monotonic() + timeout
        while self.bound_count < count:
            remaining = deadline - self._clock.monotonic()
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

    def send(
        self, messages: Sequence[OutboundMessage], *, on_settled: SettledHandler | None = None
    ) -> list[SendResult]:
        """Submit a window of messages; one SendResult per message, in order. Never raises per message.

        With ``on_settled``, each message's result is also reported as soon as every part is answered (the
        call returns once it is recorded), and its window slots stay taken until then."""
        results: list[SendResult | None] = [None] * len(messages)
        jobs: list[MessageJob] = []
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
            job = MessageJob(
                index=index,
                message=message,
                destination=address,
                split=parts,
                part_ids=[None] * count,
                part_state=[PartState.NEW] * count,
            )
            for number, provider_id in message.accepted_parts.items():
                if 1 <= number <= count:  # accepted by an earlier attempt: never sent twice
                    job.part_state[number - 1], job.part_ids[number - 1] = PartState.OK, provider_id
            jobs.append(job)
        if jobs and not self.wait_bound(self.pdu_timeout if self._opened else 0.0):
            log.warning("no SMPP bind available; %d message(s) not sent", len(jobs))
        self._submitter.run_jobs(jobs, on_settled)
        for job in jobs:
            results[job.index] = self._result(job)
        return [r for r in results if r is not None]

    def _result(self, job: MessageJob) -> SendResult:
        return result(job, host=self.host, port=self.port, throttle_backoff_max=self.throttle_backoff_max)

    # ------------------------------------------------------------------ events
    @staticmethod
    def parse_events(raw: Mapping[str, Any]) -> list[DeliveryEvent]:
        """A stored deliver_sm record -> its one normalised event (receipt or inbound message)."""
        return [receipts.parse_deliver_sm(raw)]
