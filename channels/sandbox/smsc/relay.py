"""The thin TCP relay in front of smpp34: it counts the PDUs each client sends (enquire_link included), closes
connections that stay silent past ``idle_timeout`` like a real SMSC, and can cut every connection at once
(smpp34 1.5.0 can neither close a session from the server side nor show enquire_link)."""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
import time
from collections.abc import Callable
from typing import Final

from channels.sandbox.smsc.records import ConnectionInfo

log = logging.getLogger(__name__)

# SMPP v3.4 §5.1.2.1 command_id values the relay watches in the client -> SMSC direction.
_ENQUIRE_LINK: Final = 0x00000015
_DELIVER_SM_RESP: Final = 0x80000005


class Relay:
    """Relays client connections to smpp34 on ``port``; what it sees goes to ``connections`` under ``cond``."""

    def __init__(
        self,
        *,
        host: str,
        cond: threading.Condition,
        connections: list[ConnectionInfo],
        idle_timeout: Callable[[], float | None],
    ) -> None:
        self.host = host
        self._cond = cond
        self._connections = connections
        self._idle_timeout = idle_timeout
        self._relay_writers: set[asyncio.StreamWriter] = set()

    def abort_connections(self) -> None:
        for writer in list(self._relay_writers):
            writer.transport.abort()
        self._relay_writers.clear()

    async def relay_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])
        info = ConnectionInfo(peer=peer, opened_at=time.monotonic(), last_rx=time.monotonic())
        with self._cond:
            self._connections.append(info)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, port)
        except OSError:
            writer.transport.abort()
            return
        self._relay_writers.update((writer, up_writer))
        tasks = [
            asyncio.create_task(self._relay_upstream(reader, up_writer, info)),
            asyncio.create_task(self._relay_downstream(up_reader, writer)),
        ]
        idle_timeout = self._idle_timeout()
        if idle_timeout:
            tasks.append(asyncio.create_task(self._idle_watch(info, writer, idle_timeout)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for w in (writer, up_writer):
                w.transport.abort()
                self._relay_writers.discard(w)
            with self._cond:
                info.closed_reason = info.closed_reason or "closed"
                self._cond.notify_all()

    async def _relay_upstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnectionInfo
    ) -> None:
        """Client -> smpp34, counting PDUs by their 16-octet header (SMPP v3.4 §3.2)."""
        buffer = bytearray()
        while chunk := await reader.read(65536):
            writer.write(chunk)
            buffer += chunk
            offset = 0
            while len(buffer) - offset >= 16:
                length, command_id = struct.unpack_from(">LL", buffer, offset)
                if length < 16 or len(buffer) - offset < length:
                    break
                offset += length
                with self._cond:
                    info.pdus += 1
                    info.last_rx = time.monotonic()
                    if command_id == _ENQUIRE_LINK:
                        info.enquire_links += 1
                    self._cond.notify_all()
            del buffer[:offset]
            await writer.drain()
        with self._cond:
            info.closed_reason = "client closed"

    @staticmethod
    async def _relay_downstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()

    async def _idle_watch(self, info: ConnectionInfo, writer: asyncio.StreamWriter, idle: float) -> None:
        while True:
            await asyncio.sleep(idle / 4)
            if time.monotonic() - info.last_rx > idle:
                log.info("sandbox SMSC: closing %s after %.1f s of silence", info.peer, idle)
                with self._cond:
                    info.closed_reason = "idle timeout"
                return
