"""The inbound hand-over: every deliver_sm (receipt or MO) is queued as its own octets, handed to the engine
from a thread of its own (which commits the raw record), and only then answered; ESME_RX_T_APPN when the
engine could not take it, so the SMSC redelivers it later."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import smpplib.exceptions

from channels.sms import pdus
from channels.sms.smpp.bind import Bind
from channels.sms.smpp.client import LockedClient
from channels.sms.smpp.statuses import ESME_ROK, ESME_RX_T_APPN

log = logging.getLogger(__name__)

InboundHandler = Callable[[dict[str, Any]], None]
InboundBatchHandler = Callable[[list[dict[str, Any]]], None]
INBOUND_BATCH_MAX: Final = 200  # deliver_sm records handed over (and committed) together

_Queued = tuple[Bind, Any, int, dict[str, Any]]  # bind, client to answer on, sequence, record


class InboundHandOver:
    """deliver_sm are handed to the engine from a thread of their own, so that a database commit never holds
    up the reader (and with it the submit_sm_resps of the send window). With ``on_inbound_batch`` the engine
    commits everything that queued up meanwhile in one transaction (a group commit); either way each
    deliver_sm is answered only after its handler returned."""

    def __init__(
        self,
        *,
        system_id: str,
        on_inbound: InboundHandler | None,
        on_inbound_batch: InboundBatchHandler | None,
        record_extras: Mapping[str, Any] | None = None,
    ) -> None:
        self.system_id = system_id
        self.record_extras = dict(record_extras or {})  # provider settings the record's parser needs
        self.on_inbound = on_inbound
        self.on_inbound_batch = on_inbound_batch
        self._inbound: queue.Queue[_Queued | None] = queue.Queue()
        self._inbound_thread: threading.Thread | None = None

    def start(self) -> None:
        self._inbound_thread = threading.Thread(
            target=self._inbound_loop, name=f"smpp-inbound-{self.system_id}", daemon=True
        )
        self._inbound_thread.start()

    def stop(self, timeout: float) -> None:
        """Hand over what is queued, then stop the thread (waiting at most ``timeout``)."""
        if self._inbound_thread is not None:
            self._inbound.put(None)  # after what is queued: records already read are still handed over
            self._inbound_thread.join(timeout)
            self._inbound_thread = None

    def on_deliver_sm(self, bind: Bind, client: LockedClient, raw: bytes) -> None:
        """Queue a deliver_sm for the hand-over thread, kept as its own octets: the record the engine stores
        (read later, elsewhere, by ``receipts.read_pdu``; parsing every receipt here cost the reader half its
        time)."""
        sequence = int.from_bytes(raw[12:16], "big")
        record = {
            "command": "deliver_sm",
            "sequence": sequence,
            "bind": bind.index,
            "system_id": self.system_id,
            "received_at": datetime.now(UTC).isoformat(),
            "pdu_hex": raw.hex(),
            **self.record_extras,
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

    def _hand_over(self, batch: list[_Queued]) -> None:
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
        answers: dict[int, tuple[Bind, Any, list[bytes]]] = {}  # per connection, in order
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
