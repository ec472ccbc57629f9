"""Test helpers: run the sandbox SMSC in a thread on a free 127.0.0.1 port, and build adapters against it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pytest

pytest.importorskip("smpp34", reason="smpp34 (extra 'sandbox') is not installed")

from channels.sandbox.smsc import SandboxSmsc, SmscBehaviour
from channels.sms.smpp import SmppAdapter

__all__ = ["SandboxSmsc", "SmscBehaviour", "adapter_for", "running_smsc"]


@contextmanager
def running_smsc(
    behaviour: SmscBehaviour | None = None, *, folder: Path | None = None, port: int | None = None
) -> Iterator[SandboxSmsc]:
    """A started SandboxSmsc (stopped on exit); ``port`` defaults to a free one, picked by the SMSC itself."""
    smsc = SandboxSmsc(host="127.0.0.1", port=port or 0, folder=folder, behaviour=behaviour)
    smsc.start()
    try:
        yield smsc
    finally:
        smsc.stop()


class Listening(Protocol):
    """Where an SMSC (the sandbox, or a hand-written peer) listens."""

    host: str
    port: int


def adapter_for(smsc: Listening, **overrides: Any) -> SmppAdapter:
    """An SmppAdapter pointed at ``smsc`` with test-friendly timings (not opened yet)."""
    settings: dict[str, Any] = {
        "host": smsc.host,
        "port": smsc.port,
        "system_id": "broadcaster",
        "password": "secret",
        "source_addr": "DANANG",
        "pdu_timeout": 5.0,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
        "connect_timeout": 2.0,
    }
    settings.update(overrides)
    return SmppAdapter(**settings)
