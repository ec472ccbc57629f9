"""One reusable SMTP session to the relay: open it (EHLO, TLS as configured), RSET it after a refusal, QUIT it,
and forget it when it broke. Each is used by exactly one worker coroutine at a time."""

from __future__ import annotations

import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from typing import Literal

import aiosmtplib

from channels.email.smtp_errors import Stage, classify_exception
from channels.errors import ChannelError

log = logging.getLogger(__name__)

TlsMode = Literal["none", "starttls", "tls"]

# What a connection attempt or a transaction may raise; anything else is a bug and reaches the engine.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (aiosmtplib.SMTPException, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Where the relay is and how to log in; the password is never logged or printed."""

    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    local_hostname: str | None
    timeout: float
    tls: TlsMode
    tls_context: ssl.SSLContext | None


@dataclass(slots=True)
class Connection:
    """One reusable SMTP session, used by exactly one worker coroutine at a time."""

    number: int
    smtp: aiosmtplib.SMTP | None = None
    sent: int = 0  # transactions on the current connection
    opened: int = 0  # connections opened over the adapter's life (for tests and logs)
    extensions: set[str] = field(default_factory=set)

    @property
    def connected(self) -> bool:
        return self.smtp is not None and self.smtp.is_connected

    def discard(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
        self.smtp = None
        self.sent = 0

    async def connect(self, relay: RelaySettings) -> ChannelError | None:
        """Open a new session in place of this one; the error (classified) when that failed."""
        self.discard()
        smtp = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            username=relay.username,
            password=relay.password,
            local_hostname=relay.local_hostname,
            timeout=relay.timeout,
            use_tls=relay.tls == "tls",
            # start_tls=None would upgrade whenever offered (docs/peers.md gotcha 4): make it explicit.
            start_tls=relay.tls == "starttls",
            tls_context=relay.tls_context,
        )
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
        except NETWORK_ERRORS as exc:
            smtp.close()
            error = classify_exception(exc, stage=Stage.CONNECT)
            log.warning("smtp connect failed", extra={"relay": relay.host, "error": str(error)})
            return error
        self.smtp = smtp
        self.opened += 1
        self.extensions = {name.lower() for name in smtp.esmtp_extensions}
        return None

    async def reset(self) -> None:
        """RSET after a refusal so the next transaction starts clean (RFC 5321 §4.1.1.5)."""
        if self.smtp is None or not self.smtp.is_connected:
            self.discard()
            return
        try:
            await self.smtp.rset()
        except NETWORK_ERRORS:
            self.discard()

    async def quit(self) -> None:
        if self.smtp is not None and self.smtp.is_connected:
            with contextlib.suppress(*NETWORK_ERRORS):  # we are closing it anyway
                await self.smtp.quit()
        self.discard()
