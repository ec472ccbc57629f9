"""The raw-client baseline of one size: raw aiosmtplib or raw smpplib against the same peer, in a fresh process."""

from __future__ import annotations

from typing import Any

from benchmarks.peers import Peer
from benchmarks.processes import in_child
from benchmarks.raw_smpp import RawSmppResult, run_raw_smpp
from benchmarks.raw_smtp import RawSmtpResult, run_raw_smtp
from benchmarks.workdir import Sample

__all__ = ["raw_email", "raw_sms"]


def raw_email(peer: Peer, sample: Sample, count: int) -> dict[str, Any]:
    result: RawSmtpResult = in_child(
        run_raw_smtp,
        host="127.0.0.1",
        port=peer.port,
        sender=sample.mail_sender,
        recipient=sample.mail_recipient,
        data=sample.mail_data,
        count=count,
    )
    return result.to_json()


def raw_sms(peer: Peer, sample: Sample, *, receipts: bool, receipt_timeout: float) -> dict[str, Any]:
    result: RawSmppResult = in_child(
        run_raw_smpp,
        host="127.0.0.1",
        port=peer.port,
        text=sample.sms_text,
        destinations=sample.sms_destinations,
        receipts=receipts,
        receipt_timeout=receipt_timeout,
    )
    return result.to_json()
