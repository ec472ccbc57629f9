"""The raw SMS baseline: smpplib on one transceiver bind, 64 submit_sm outstanding, every receipt answered.

This is docs/peers.md's "smpplib 1 bind, window 64, every receipt read and answered" row (~1,584 msgs/s against
the smpp34 SMSC here): no outbox, no database, no per-message splitting (the text is encoded once). One
thread owns the socket, so smpplib's missing locks (docs/peers.md smpplib gotcha 1) do not matter: it writes
submit_sm while the window has room, otherwise reads one PDU; reading a deliver_sm answers it from the
same thread.

Other gotchas handled: the error handler counts instead of raising (gotcha 2; ``message_sent_handler`` is
then called as well, so it checks ``pdu.status`` too), responses are correlated by sequence because they
come back out of order (gotcha 3), ``allow_unknown_opt_params=True`` (gotcha 5: the sandbox adds a vendor
TLV to receipts), and ``unbind()`` may raise against smpp34 (gotcha 8).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import smpplib.client
import smpplib.exceptions

from channels.sms.encoding import split

__all__ = ["RawSmppResult", "combined", "run_raw_smpp"]

# SMPP v3.4 §5.2.5-§5.2.6: alphanumeric source (TON 5, NPI 0) as the engine sends a brandname; international
# ISDN destinations (TON 1, NPI 1).
_TON_ALPHANUMERIC = 5
_TON_INTERNATIONAL = 1
_NPI_ISDN = 1
_REGISTERED_DELIVERY = 0x01  # SMPP v3.4 §5.2.17: SMSC delivery receipt on final outcome
_ESM_RECEIPT = 0x04  # SMPP v3.4 §5.2.12: esm_class bits 2-5 = 0001, SMSC delivery receipt
_ESME_ROK = 0x00


@dataclass(frozen=True, slots=True)
class RawSmppResult:
    count: int  # messages whose every part got submit_sm_resp 0
    submits: int  # submit_sm written
    refused: int  # submit_sm_resp / generic_nack with an error status
    receipts: int  # receipt deliver_sm read and answered
    seconds: float  # first submit_sm to the last submit_sm_resp
    receipts_seconds: float | None  # first submit_sm to the last expected receipt (None: not all arrived)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1)}


def run_raw_smpp(
    *,
    host: str,
    port: int,
    text: str,
    destinations: Sequence[str],
    source_addr: str = "SKHCN",
    window: int = 64,
    receipts: bool = True,
    receipt_timeout: float = 30.0,
    send_timeout: float = 300.0,
    ready: Callable[[], object] | None = None,
) -> RawSmppResult:
    """Submit ``text`` once to each destination (E.164 digits) on one bind; wait for receipts when asked.
    ``ready`` is called once bound, before the clock starts (the binds of a multi-bind run start together)."""
    # smpplib logs every vendor TLV it skips and every unbind smpp34 cuts short: thousands of lines.
    for name in ("smpplib", "smpp"):  # smpplib.command and smpp.Client.<id>
        logging.getLogger(name).setLevel(logging.ERROR)
    parts = split(text, reference=0)
    payloads = [part.short_message for part in parts.parts]
    client = smpplib.client.Client(host, port, timeout=5, allow_unknown_opt_params=True)
    outstanding: set[int] = set()
    counters = {"refused": 0, "receipts": 0, "ok_parts": 0}

    def on_error(pdu: Any) -> None:  # gotcha 2: never raise out of read_once
        counters["refused"] += 1

    def on_sent(pdu: Any) -> None:
        outstanding.discard(pdu.sequence)
        if int(pdu.status or 0) == _ESME_ROK:
            counters["ok_parts"] += 1

    def on_received(pdu: Any) -> int:
        if int(pdu.esm_class or 0) & _ESM_RECEIPT:
            counters["receipts"] += 1
        return _ESME_ROK  # becomes the deliver_sm_resp status (gotcha 4)

    client.set_error_pdu_handler(on_error)
    client.set_message_sent_handler(on_sent)
    client.set_message_received_handler(on_received)
    client.connect()
    sock = getattr(client, "_socket", None)  # smpplib keeps its socket private
    if sock is not None:
        # One small PDU per write: without TCP_NODELAY, Nagle + delayed ACK stall the window by ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id="bench", password="bench")
    if ready is not None:
        ready()
    expected_receipts = len(destinations) * len(payloads) if receipts else 0
    submits = 0
    receipts_seconds: float | None = None
    started = time.perf_counter()
    try:
        deadline = started + send_timeout
        queue = [(destination, payload) for destination in destinations for payload in payloads]
        position = 0
        while (position < len(queue) or outstanding) and time.perf_counter() < deadline:
            while position < len(queue) and len(outstanding) < window:
                destination, payload = queue[position]
                position += 1
                pdu = client.send_message(
                    source_addr_ton=_TON_ALPHANUMERIC,
                    source_addr_npi=0,
                    source_addr=source_addr,
                    dest_addr_ton=_TON_INTERNATIONAL,
                    dest_addr_npi=_NPI_ISDN,
                    destination_addr=destination,
                    esm_class=parts.esm_class,
                    data_coding=parts.data_coding,
                    registered_delivery=_REGISTERED_DELIVERY if receipts else 0,
                    short_message=payload,
                )
                outstanding.add(pdu.sequence)
                submits += 1
            client.read_once()
        seconds = time.perf_counter() - started
        receipt_deadline = time.perf_counter() + receipt_timeout
        while counters["receipts"] < expected_receipts and time.perf_counter() < receipt_deadline:
            client.read_once()
        if receipts and counters["receipts"] >= expected_receipts:
            receipts_seconds = time.perf_counter() - started
    finally:
        # gotcha 8: smpp34 often closes before unbind_resp.
        with contextlib.suppress(smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError):
            client.unbind()
        client.disconnect()
    return RawSmppResult(
        count=counters["ok_parts"] // max(1, len(payloads)),
        submits=submits,
        refused=counters["refused"],
        receipts=counters["receipts"],
        seconds=seconds,
        receipts_seconds=receipts_seconds,
    )


def combined(results: Sequence[RawSmppResult]) -> RawSmppResult:
    """The binds of one run, started together, as one client: their counts summed over the slowest bind's
    time (None receipts time when any bind missed some)."""
    receipt_times = [r.receipts_seconds for r in results]
    return RawSmppResult(
        count=sum(r.count for r in results),
        submits=sum(r.submits for r in results),
        refused=sum(r.refused for r in results),
        receipts=sum(r.receipts for r in results),
        seconds=max(r.seconds for r in results),
        receipts_seconds=None if None in receipt_times else max(t for t in receipt_times if t is not None),
    )
