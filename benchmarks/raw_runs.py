"""The raw-client baseline of one size: raw aiosmtplib or raw smpplib against the same peer, in fresh processes
(SMS on several binds: one process per bind, each with its own window and share of the destinations)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from threading import Barrier
from typing import Any

from benchmarks.peers import Peer
from benchmarks.processes import in_child
from benchmarks.raw_smpp import RawSmppResult, combined, run_raw_smpp
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


def _one_bind(start: Barrier, **kwargs: Any) -> RawSmppResult:
    return run_raw_smpp(ready=start.wait, **kwargs)


def raw_sms(
    peer: Peer, sample: Sample, *, receipts: bool, receipt_timeout: float, binds: int = 1
) -> dict[str, Any]:
    """``binds`` clients at once, each on its own bind and in its own process (its own GIL, as the SMSC sees
    separate sessions), the destinations dealt out between them; they start writing together once all are
    bound, and count as one client (``raw_smpp.combined``)."""
    common = {
        "host": "127.0.0.1",
        "port": peer.port,
        "text": sample.sms_text,
        "receipts": receipts,
        "receipt_timeout": receipt_timeout,
    }
    if binds == 1:
        result: RawSmppResult = in_child(run_raw_smpp, destinations=sample.sms_destinations, **common)
        return {**result.to_json(), "binds": 1}
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(max_workers=binds, mp_context=context) as pool:
        start = manager.Barrier(binds, timeout=60)
        futures = [
            pool.submit(_one_bind, start, destinations=sample.sms_destinations[index::binds], **common)
            for index in range(binds)
        ]
        results = [future.result() for future in futures]
    return {**combined(results).to_json(), "binds": binds}
