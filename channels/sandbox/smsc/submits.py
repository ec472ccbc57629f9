"""The sandbox SMSC's answer to each submit_sm: accept, throttle or reject per its behaviour, record it (in
memory and one JSON line in ``<folder>/sms.jsonl``), and ask for receipts when the ESME wants them."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import smpp34

from channels.sandbox.smsc import fields
from channels.sandbox.smsc.records import SmscBehaviour, SubmitRecord


class SubmitDesk:
    """Answers submit_sm; accepted parts whose receipt is due go to ``on_receipt_due``."""

    def __init__(
        self,
        *,
        behaviour: Callable[[], SmscBehaviour],
        cond: threading.Condition,
        sessions: dict[str, smpp34.Esme],
        submits: list[SubmitRecord],
        on_receipt_due: Callable[[SubmitRecord], None],
    ) -> None:
        self._behaviour = behaviour
        self._cond = cond
        self._sessions = sessions
        self._submits = submits
        self._on_receipt_due = on_receipt_due
        self._submit_count = 0
        self._accept_times: deque[float] = deque()
        self._jsonl: Any = None

    def open_log(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._jsonl = (folder / "sms.jsonl").open("a", encoding="utf-8")

    def close_log(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None

    def _decide(self, destination: str) -> int:
        """The command_status for the next submit_sm: reject map, then throttling, else 0."""
        behaviour = self._behaviour()
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

    def on_submit(self, event: smpp34.SubmitSmEvent) -> None:
        short_message = event.short_message
        if event.esm_class & fields.ESM_UDHI:
            reference, total, number, payload = fields.parse_udh(short_message)
        else:
            reference, total, number, payload = fields.sar(event.tlvs, short_message)
        status = self._decide(event.destination_addr)
        message_id = fields.new_message_id(self._behaviour()) if status == 0 else None
        if message_id is not None:
            event.accept(message_id)
        else:
            event.reject(status)
        esme = self._sessions.get(event.session_id)
        record = SubmitRecord(
            time=fields.now_iso(),
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
            text=fields.decode(payload, event.data_coding),
            short_message_hex=short_message.hex(),
            message_id=message_id,
            status=status,
        )
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            self._jsonl.flush()
        if self._behaviour().keep_records:
            with self._cond:
                self._submits.append(record)
                self._cond.notify_all()
        # registered_delivery bits 1-0 (SMPP v3.4 §5.2.17): 01 = receipt on success or failure, 10 = on failure.
        wanted = event.registered_delivery & 0x03
        undeliverable = event.destination_addr in self._behaviour().undeliverable
        if (
            message_id is not None
            and self._behaviour().receipts
            and (wanted == 1 or (wanted == 2 and undeliverable))
        ):
            self._on_receipt_due(record)
