"""The sandbox SMSC itself: ``SandboxSmsc`` runs smpp34 (behind the relay) in one asyncio loop on its own
thread, pumps its events, keeps the records for tests, and shuts down without cancelling an smpp34 call;
``run_smsc`` serves until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import smpp34

from channels.sandbox.smsc.calls import Calls
from channels.sandbox.smsc.deliver import Deliverer
from channels.sandbox.smsc.records import (
    ConnectionInfo,
    DeliverRecord,
    MoMessage,
    ReassembledMessage,
    SmscBehaviour,
    SubmitRecord,
    reassemble,
)
from channels.sandbox.smsc.relay import Relay
from channels.sandbox.smsc.submits import SubmitDesk

log = logging.getLogger(__name__)

# The system_id of the session the SMSC binds to itself at shutdown, to end its event pump by an event.
_WAKE_UP = "sandbox-stop"
# How long shutdown waits for smpp34 calls to settle. With the relay every session is cut and they settle at
# once; without it a client that neither answers the unbind nor disconnects keeps its unbind call open.
_SETTLE_TIMEOUT = 5.0


_PICK_ATTEMPTS = 5


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _address_in_use(error: BaseException) -> bool:
    """The relay's bind says so by errno; smpp34's own server only in its message."""
    if isinstance(error, OSError):
        return error.errno == errno.EADDRINUSE
    return "Address already in use" in str(error)


class SandboxSmsc:
    """The sandbox SMSC. Thread-safe start/stop; records readable from any thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        folder: str | Path | None = None,
        behaviour: SmscBehaviour | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.folder = Path(folder) if folder is not None else None
        self.behaviour = behaviour or SmscBehaviour()
        self._cond = threading.Condition()
        self._submits: list[SubmitRecord] = []
        self._delivers: list[DeliverRecord] = []
        self._connections: list[ConnectionInfo] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        # Loop-thread state.
        self._sessions: dict[str, smpp34.Esme] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # smpp34 calls not settled yet, and what each is (see ``calls``).
        self._calls = Calls()
        self._stopping = False
        self._mo_sent = False
        self._relay = Relay(
            host=host,
            cond=self._cond,
            connections=self._connections,
            idle_timeout=lambda: self.behaviour.idle_timeout,
        )
        self._deliverer = Deliverer(
            behaviour=lambda: self.behaviour,  # read at each use: a test may swap it
            cond=self._cond,
            sessions=self._sessions,
            delivers=self._delivers,
            calls=self._calls,
            stopping=lambda: self._stopping,
        )
        self._desk = SubmitDesk(
            behaviour=lambda: self.behaviour,  # read at each use: a test may swap it
            cond=self._cond,
            sessions=self._sessions,
            submits=self._submits,
            on_receipt_due=lambda record: self._spawn(self._deliverer.send_receipts(record)),
        )

    # ------------------------------------------------------------------ public, any thread
    def start(self) -> tuple[str, int]:
        """Start serving in a background thread; returns the address clients should connect to."""
        if self._thread is not None:
            raise RuntimeError("SandboxSmsc already started")
        # A port picked here was free a moment ago; another socket may take it before the bind (a client's
        # ephemeral port, say): then pick again. A port given by the caller is tried once.
        picking = self.port == 0
        for attempt in range(1, _PICK_ATTEMPTS + 1):
            if picking:
                self.port = _free_port(self.host)
            error = self._start_once()
            if error is None:
                log.info("sandbox SMSC listening on %s:%d", self.host, self.port)
                return self.host, self.port
            if not (picking and _address_in_use(error) and attempt < _PICK_ATTEMPTS):
                raise RuntimeError(f"sandbox SMSC could not start: {error}") from error
            log.info("sandbox SMSC: port %d was taken meanwhile; picking another", self.port)
        raise AssertionError("unreachable")

    def _start_once(self) -> BaseException | None:
        """Start the loop thread on ``self.port``; the startup error, with the thread gone, or None."""
        self._ready.clear()
        self._startup_error = None
        self._stopping = False  # a failed attempt's shutdown set it
        self._thread = threading.Thread(target=self._run, name=f"sandbox-smsc-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("sandbox SMSC did not start within 10 s")
        if self._startup_error is None:
            return None
        self._thread.join(5)
        self._thread = None
        return self._startup_error

    def stop(self) -> None:
        """Drop every connection and stop serving. Idempotent."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished on its own
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(15)
        self._thread = None
        log.info("sandbox SMSC on %s:%d stopped", self.host, self.port)

    def drop_connections(self) -> None:
        """Cut every client connection now (a network failure); the SMSC keeps listening."""
        self._call_in_loop(self._relay.abort_connections)

    def inject_mo(self, sender: str, recipient: str, text: str) -> None:
        """Send one mobile-originated message to a bound session."""
        message = MoMessage(sender=sender, recipient=recipient, text=text)
        self._call_in_loop(lambda: self._spawn(self._deliverer.send_mo(message)))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def submits(self) -> list[SubmitRecord]:
        """Every submit_sm received so far (accepted or not), in arrival order."""
        with self._cond:
            return list(self._submits)

    @property
    def accepted(self) -> list[SubmitRecord]:
        with self._cond:
            return [r for r in self._submits if r.status == 0]

    @property
    def delivers(self) -> list[DeliverRecord]:
        """Every deliver_sm attempt and its answer, in the order the answers came."""
        with self._cond:
            return list(self._delivers)

    @property
    def connections(self) -> list[ConnectionInfo]:
        """Client connections seen by the relay (empty with ``relay=False``)."""
        with self._cond:
            return list(self._connections)

    @property
    def bound_sessions(self) -> int:
        with self._cond:
            return len(self._sessions)

    def wait_until(self, predicate: Callable[[SandboxSmsc], object], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every new record) or the timeout passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))
        return True

    def reassembled(self) -> list[ReassembledMessage]:
        """Accepted parts grouped into messages, in order of each message's first part."""
        return reassemble(self.accepted)

    # ------------------------------------------------------------------ loop thread
    def _call_in_loop(self, func: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("sandbox SMSC is not running")
        loop.call_soon_threadsafe(func)

    def _spawn(self, coro: Any) -> None:
        if self._stopping:  # no new receipts or MO once the stop began: they would start new smpp34 calls
            coro.close()
            return
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except OSError as exc:  # bind failure before ready: report it to start()
            self._startup_error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        behaviour = self.behaviour
        if self.folder is not None:
            self._desk.open_log(self.folder)
        smsc_port = _free_port(self.host) if behaviour.relay else self.port
        server = smpp34.Server(self.host, smsc_port, system_id=behaviour.system_id)
        relay: asyncio.Server | None = None
        pump: asyncio.Task[None] | None = None
        try:
            try:
                await self._calls.call("start", server.start())
                if behaviour.relay:
                    relay = await asyncio.start_server(
                        lambda r, w: self._relay.relay_client(r, w, smsc_port), self.host, self.port
                    )
            except (OSError, smpp34.SmppError) as exc:
                self._startup_error = exc
                self._ready.set()
                return
            self._ready.set()
            pump = asyncio.create_task(self._pump(server))
            await self._stop_event.wait()
        finally:
            await self._shutdown(server, relay, pump, smsc_port)

    async def _shutdown(
        self,
        server: smpp34.Server,
        relay: asyncio.Server | None,
        pump: asyncio.Task[None] | None,
        smsc_port: int,
    ) -> None:
        self._stopping = True
        if relay is not None:
            relay.close()
            self._relay.abort_connections()
        else:
            for esme in list(self._sessions.values()):
                with contextlib.suppress(TimeoutError, smpp34.SmppError, OSError):
                    await self._calls.call("unbind", esme.unbind(), 1.0)
        if pump is not None:
            await self._end_pump(pump, smsc_port)
        for task in list(self._tasks):
            task.cancel()  # our own tasks: a call one of them waits for goes on and settles by itself
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(smpp34.SmppError, OSError):
            await self._calls.call("stop", server.stop())
        await self._calls.wait_settled(_SETTLE_TIMEOUT)
        with self._cond:
            self._sessions.clear()
            self._cond.notify_all()
        self._desk.close_log()

    async def _pump(self, server: smpp34.Server) -> None:
        while True:
            event = await self._calls.call("next", server.next())
            if isinstance(event, smpp34.SubmitSmEvent):
                self._desk.on_submit(event)
            elif isinstance(event, smpp34.Esme) and event.system_id == _WAKE_UP:
                return  # stopping: no next() is left waiting (see the module docstring)
            elif isinstance(event, smpp34.Esme):
                log.info("sandbox SMSC: %s bound (session %s)", event.system_id, event.session_id)
                with self._cond:
                    self._sessions[event.session_id] = event
                    self._cond.notify_all()
                if self.behaviour.mo_messages and not self._mo_sent and event.can_receive:
                    self._mo_sent = True
                    for message in self.behaviour.mo_messages:
                        self._spawn(self._deliverer.send_mo(message))
            elif isinstance(event, smpp34.Unbound):
                log.info("sandbox SMSC: session %s ended", event.session_id)
                with self._cond:
                    self._sessions.pop(event.session_id, None)
                    self._cond.notify_all()

    async def _end_pump(self, pump: asyncio.Task[None], port: int) -> None:
        """End the event pump by an event: bind a session of our own, which the pump takes as the stop."""
        if not pump.done():
            client = smpp34.Client(self.host, port, _WAKE_UP, "", connect_timeout_ms=5000)
            try:
                session = await self._calls.call("wake-up connect", client.connect(), 10.0)
            except (TimeoutError, smpp34.SmppError, OSError) as exc:
                log.warning("sandbox SMSC: could not end the event pump by a session of its own: %r", exc)
            else:
                await asyncio.wait({pump}, timeout=_SETTLE_TIMEOUT)
                with contextlib.suppress(TimeoutError, smpp34.SmppError, OSError):
                    await self._calls.call("wake-up unbind", session.unbind(), 5.0)
        if not pump.done():  # the last resort: the old way
            pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, smpp34.SmppError, OSError):
            await pump


def run_smsc(
    host: str = "127.0.0.1",
    port: int = 2775,
    folder: str | Path | None = None,
    behaviour: SmscBehaviour | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C): the ``broadcaster sandbox`` command calls this."""
    smsc = SandboxSmsc(host=host, port=port, folder=folder, behaviour=behaviour)
    smsc.start()
    stopped = threading.Event()
    try:
        while not stopped.wait(1.0):
            if not smsc.running:
                break
    except KeyboardInterrupt:
        log.info("sandbox SMSC interrupted")
    finally:
        smsc.stop()
