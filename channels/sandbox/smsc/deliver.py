"""The sandbox SMSC's deliver_sm: delivery receipts for accepted parts (text, TLVs or both, in the id form the
behaviour asks for, duplicated or for unknown ids on request) and mobile-originated messages, each sent to a
bound receiver and resent when the ESME answers it with an error."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import smpp34

from channels.sandbox.smsc import fields as pdu_fields
from channels.sandbox.smsc.calls import Calls
from channels.sandbox.smsc.records import DeliverRecord, MoMessage, SmscBehaviour, SubmitRecord
from channels.sms.encoding import Encoding, detect_encoding, split, unaccent

log = logging.getLogger(__name__)


class Deliverer:
    """Sends receipts and MO to the sessions in ``sessions``; every attempt is recorded in ``delivers``."""

    def __init__(
        self,
        *,
        behaviour: Callable[[], SmscBehaviour],
        cond: threading.Condition,
        sessions: dict[str, smpp34.Esme],
        delivers: list[DeliverRecord],
        calls: Calls,
        stopping: Callable[[], bool],
    ) -> None:
        self._behaviour = behaviour
        self._cond = cond
        self._sessions = sessions
        self._delivers = delivers
        self._calls = calls
        self._stopping = stopping

    async def send_receipts(self, record: SubmitRecord) -> None:
        behaviour = self._behaviour()
        if behaviour.receipt_delay > 0:
            await asyncio.sleep(behaviour.receipt_delay)
        if record.message_id is None:  # only accepted parts get receipts
            return
        receipt_id = pdu_fields.receipt_id(behaviour, record.message_id)
        copies = 2 if behaviour.duplicate_receipts else 1
        for _ in range(copies):
            await self._send_receipt(record, receipt_id)
        if behaviour.unknown_id_receipts:
            await self._send_receipt(record, "FFFF" + uuid.uuid4().hex[:8].upper())

    async def _send_receipt(self, record: SubmitRecord, receipt_id: str) -> None:
        behaviour = self._behaviour()
        now = datetime.now(UTC)
        undeliverable = record.destination in behaviour.undeliverable
        # SMPP v3.4 Appendix B stat words and §5.2.28 message_state: DELIVRD = 2, UNDELIV = 5.
        code = behaviour.undeliverable_error
        stat, state, err = ("UNDELIV", 5, f"{code:03d}") if undeliverable else ("DELIVRD", 2, "000")
        short_message = b""
        if behaviour.receipt_style in ("text", "both"):
            excerpt = unaccent(record.text)[:20].encode("ascii", errors="replace").decode("ascii")
            text = (
                f"id:{receipt_id} sub:001 dlvrd:{'000' if undeliverable else '001'} "
                f"submit date:{pdu_fields.smpp_date(now)} done date:{pdu_fields.smpp_date(now)} stat:{stat} err:{err} "
                f"text:{excerpt}"
            )
            short_message = text.encode("ascii")
        tlvs: list[smpp34.Tlv] = []
        if behaviour.receipt_style in ("tlv", "both"):
            tlvs.append(smpp34.Tlv(pdu_fields.TLV_RECEIPTED_MESSAGE_ID, receipt_id.encode("ascii") + b"\x00"))
            tlvs.append(smpp34.Tlv(pdu_fields.TLV_MESSAGE_STATE, bytes((state,))))
            if undeliverable:
                # §5.3.2.31 network_error_code: network type 3 (GSM) + 2-octet error code.
                tlvs.append(smpp34.Tlv(pdu_fields.TLV_NETWORK_ERROR_CODE, b"\x03" + code.to_bytes(2, "big")))
        if behaviour.vendor_tlv:
            tlvs.append(smpp34.Tlv(pdu_fields.TLV_VENDOR_SANDBOX, b"sandbox"))
        await self._deliver(
            preferred_session=record.session_id,
            system_id=record.system_id,
            kind="receipt",
            receipted_id=receipt_id,
            stat=stat,
            destination_addr=record.source,
            short_message=short_message,
            source_addr=record.destination,
            esm_class=pdu_fields.ESM_RECEIPT,
            data_coding=0,
            tlvs=tlvs,
        )

    async def send_mo(self, message: MoMessage) -> None:
        encoding = detect_encoding(message.text)
        parts = split(message.text, reference=next(pdu_fields.ID_COUNTER) & 0xFF, encoding=encoding)
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
        behaviour = self._behaviour()
        for attempt in range(1, behaviour.redeliver_attempts + 2):
            if self._stopping():
                return
            esme = self._pick_session(preferred_session, system_id)
            if esme is None:
                log.warning("sandbox SMSC: no bound receiver for a %s; dropped", kind)
                return
            status: int | None
            try:
                resp = await self._calls.call(
                    "deliver_sm",
                    esme.deliver_sm(destination_addr, short_message, **fields),
                    behaviour.deliver_timeout,
                )
                status = resp.command_status
            except (TimeoutError, smpp34.SmppError, OSError) as exc:
                log.warning("sandbox SMSC: deliver_sm to %s got no answer: %r", esme.session_id, exc)
                status = None
            record = DeliverRecord(
                time=pdu_fields.now_iso(),
                session_id=esme.session_id,
                kind=kind,
                receipted_id=receipted_id,
                stat=stat,
                attempt=attempt,
                command_status=status,
                answered_at=time.monotonic(),
            )
            if behaviour.keep_records:
                with self._cond:
                    self._delivers.append(record)
                    self._cond.notify_all()
            if status == 0:
                return
            await asyncio.sleep(behaviour.redeliver_delay)
