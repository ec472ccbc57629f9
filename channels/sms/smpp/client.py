"""The smpplib client the adapter talks through: socket writes and sequence numbers under locks, and a window's
PDUs written as octets in as few system calls as the socket allows (docs/peers.md smpplib gotchas 1, 2 and 5)."""

from __future__ import annotations

import bisect
import itertools
import logging
import socket
import threading
from collections.abc import Sequence
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions

log = logging.getLogger(__name__)

# smpplib's own logging of every PDU, kept under the adapter's logger name.
WIRE_LOGGER: str = "channels.sms.smpp.wire"


class WriteFailed(smpplib.exceptions.ConnectionError):  # type: ignore[misc]
    """A batched write broke off: its first ``complete`` PDUs went out whole, the rest did not."""

    def __init__(self, complete: int, reason: str) -> None:
        super().__init__(reason)
        self.complete = complete


class LockedSequence(smpplib.client.SimpleSequenceGenerator):  # type: ignore[misc]
    """smpplib's sequence generator behind a lock (gotcha 1: ``_sequence += 1`` races between threads)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            return int(super().next_sequence())


class LockedClient(smpplib.client.Client):  # type: ignore[misc]
    """An smpplib client whose socket writes are serialised: the reader and the sender both write."""

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        super().__init__(
            host,
            port,
            timeout=timeout,
            sequence_generator=LockedSequence(),
            allow_unknown_opt_params=True,  # gotcha 5: vendor TLVs in receipts must not raise
            logger_name=WIRE_LOGGER,
        )
        self._write_lock = threading.Lock()
        # Gotcha 2: the default handler raises PDUError; we dispatch statuses ourselves and never call
        # read_once(), but keep a harmless handler in case anything in smpplib does.
        self.set_error_pdu_handler(
            lambda pdu: log.debug("error PDU %s status 0x%08X", pdu.command, pdu.status)
        )

    def send_pdu(self, p: Any) -> bool:
        with self._write_lock:
            return bool(super().send_pdu(p))

    def send_octets(self, command: str, octets: Sequence[bytes]) -> None:
        """Write several ``command`` PDUs (their octets) with as few system calls as the socket allows.

        Each ``sendall`` gives up the GIL and must win it back from the reader and the engine's threads; one
        write per window instead of one per PDU is most of what separates a threaded gateway from a
        single-threaded client. Raises ``WriteFailed`` saying how many PDUs went out whole.
        """
        ends = list(itertools.accumulate(len(chunk) for chunk in octets))
        data = b"".join(octets)
        with self._write_lock:
            if self.state not in smpplib.consts.COMMAND_STATES[command]:
                raise WriteFailed(0, f"session state {self.state} does not allow {command}")
            sock = self._socket
            if sock is None:
                raise WriteFailed(0, "socket closed")
            view = memoryview(data)
            written = 0
            try:
                while written < len(data):
                    written += sock.send(view[written:])
            except OSError as exc:
                raise WriteFailed(bisect.bisect_right(ends, written), repr(exc)) from exc

    @property
    def sock(self) -> socket.socket | None:
        return self._socket  # type: ignore[no-any-return]
