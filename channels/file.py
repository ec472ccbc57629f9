"""Adapters that write messages somewhere local instead of a provider: a JSON-lines file, or the console.

For dry runs and rehearsals on any channel (``type = "file"`` or ``"console"`` in a provider section). They pass
the same contract suite as the network adapters, including address-level rejection (``reject``), so a
rehearsal exercises the engine's failure paths too.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TextIO

from channels.base import AdapterBase, Capabilities, Channel, DeliveryEvent, OutboundMessage, SendResult
from channels.errors import ConfigurationError, RecipientRejected


class FileAdapter(AdapterBase):
    """Appends one JSON line per message to ``path``; the provider id is ``file-<message id>``."""

    channel: ClassVar[Channel] = Channel.SMS
    capabilities: ClassVar[Capabilities] = Capabilities(window=100, receipts=False, any_channel=True)

    def __init__(self, *, path: str | Path, channel: str = "sms", reject: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.__dict__["channel"] = Channel(channel)  # one class serves every channel
        self.reject = frozenset(reject)
        self._stream: TextIO | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        if self._stream is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot open {self.path} for writing", detail=str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    def _write(self, line: str) -> None:
        if self._stream is None:
            raise ConfigurationError("the file adapter is not open")
        self._stream.write(line + "\n")

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        with self._lock:
            for message in messages:
                if message.address in self.reject:
                    results.append(
                        SendResult.failed(
                            message.message_id,
                            RecipientRejected("address rejected by configuration", code="reject"),
                        )
                    )
                    continue
                record = {
                    "at": datetime.now(UTC).isoformat(),
                    "channel": self.channel.value,
                    "message_id": message.message_id,
                    "to": message.address,
                    "subject": message.subject,
                    "body": message.body,
                }
                self._write(json.dumps(record, ensure_ascii=False))
                results.append(SendResult.sent(message.message_id, f"file-{message.message_id}"))
            if self._stream is not None:
                self._stream.flush()
        return results

    @staticmethod
    def parse_events(raw: Mapping[str, Any]) -> list[DeliveryEvent]:
        return []  # a file never reports delivery


class ConsoleAdapter(FileAdapter):
    """Prints each message to standard output (for a quick look, not for volume)."""

    def __init__(
        self, *, channel: str = "sms", reject: Iterable[str] = (), stream: TextIO | None = None
    ) -> None:
        super().__init__(path="-", channel=channel, reject=reject)
        self._out = stream

    def open(self) -> None:
        self._stream = self._out or sys.stdout

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.flush()
            self._stream = None
