"""The raw e-mail baseline: aiosmtplib on one reused connection sending the same rendered bytes N times.

This is the ceiling one event loop reaches without an outbox, a database or MIME building per recipient
(docs/peers.md "Ceilings": ~785 msgs/s for an 11.6 KB Vietnamese HTML mail to smtp-sink on this class of machine).
One ``SMTP`` object serialises its transactions (docs/peers.md aiosmtplib gotcha 1), so this is strictly one
MAIL/RCPT/DATA after another, which is exactly what "one connection" means.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiosmtplib

__all__ = ["RawSmtpResult", "run_raw_smtp"]


@dataclass(frozen=True, slots=True)
class RawSmtpResult:
    count: int  # messages accepted (250 after DATA)
    failed: int
    seconds: float  # first MAIL FROM to the last reply after DATA
    size: int  # bytes of the one rendered message

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1)}


async def _send_all(
    *, host: str, port: int, sender: str, recipient: str, data: bytes, count: int, timeout: float
) -> RawSmtpResult:
    # start_tls=False: smtp-sink and aiosmtpd offer no STARTTLS here, and the engine runs with tls = "none".
    smtp = aiosmtplib.SMTP(hostname=host, port=port, timeout=timeout, start_tls=False)
    await smtp.connect()
    await smtp.ehlo()
    accepted = failed = 0
    started = time.perf_counter()
    try:
        for _ in range(count):
            try:
                errors, _reply = await smtp.sendmail(sender, [recipient], data)
            except aiosmtplib.SMTPResponseException:
                failed += 1
                continue
            if errors:
                failed += 1
            else:
                accepted += 1
        seconds = time.perf_counter() - started
    finally:
        try:
            await smtp.quit()
        except aiosmtplib.SMTPException:
            smtp.close()
    return RawSmtpResult(count=accepted, failed=failed, seconds=seconds, size=len(data))


def run_raw_smtp(
    *, host: str, port: int, sender: str, recipient: str, data: bytes, count: int, timeout: float = 30.0
) -> RawSmtpResult:
    """Send ``data`` ``count`` times over one connection; blocks until done (its own event loop)."""
    return asyncio.run(
        _send_all(
            host=host, port=port, sender=sender, recipient=recipient, data=data, count=count, timeout=timeout
        )
    )
