"""Run the sandbox SMTP server (aiosmtpd) on 127.0.0.1 and a free port for a test, and stop it afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from channels.sandbox.smtp import SandboxSmtpServer, SmtpBehaviour


@contextlib.contextmanager
def running_smtp_sandbox(
    folder: Path | None = None, behaviour: SmtpBehaviour | None = None, *, port: int | None = None
) -> Iterator[SandboxSmtpServer]:
    """A started :class:`SandboxSmtpServer`; pass ``port`` to come back on the same port after a stop."""
    server = SandboxSmtpServer(folder, "127.0.0.1", port or 0, behaviour)
    server.start()
    try:
        yield server
    finally:
        server.stop()
