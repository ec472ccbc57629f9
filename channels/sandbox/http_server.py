"""Serve an ASGI app (a provider's local peer) with hypercorn on 127.0.0.1, in a thread of its own.

The HTTP peers (``fcm``, ``apns``, ``graph``, ``zalo`` in this package) use it, in the tests and in
``broadcaster sandbox``. HTTP/1.1 and HTTP/2 are both served; the push peers refuse anything but HTTP/2. The socket is bound (port 0) and
listening before hypercorn starts, and handed over as ``fd://``, so the port is known at once and a client
that connects early waits in the backlog instead of being refused.

Two ways to speak HTTP/2, as the adapters' client does (``channels/push/http2.py``): by default over
``http://`` with prior knowledge (h2c; hypercorn recognises the HTTP/2 preface on a plain connection), or,
with ``tls_dir``, over ``https://`` negotiated by ALPN, with a certificate from a throw-away CA (``trustme``)
whose certificate is written to ``Http2Server.ca_file`` for the client to trust (``SSL_CERT_FILE``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Http2Server:
    """A running server: ``url`` to reach it, ``loop`` it runs on, ``stopping`` set when it shuts down, and
    with TLS the CA certificate (PEM) a client must trust."""

    def __init__(
        self, url: str, loop: asyncio.AbstractEventLoop, stopping: asyncio.Event, ca_file: Path | None = None
    ) -> None:
        self.url = url
        self.loop = loop
        self.stopping = stopping
        self.ca_file = ca_file


@contextmanager
def serving(
    app: AsgiApp,
    *,
    name: str,
    tls_dir: Path | None = None,
    port: int = 0,
    on_stop: Callable[[], object] | None = None,
) -> Iterator[Http2Server]:
    """Serve ``app`` on ``port`` (0: a free one) until the block ends; ``on_stop`` runs in the server's loop
    before it shuts down (a peer releases the answers it holds back there)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(256)
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns (and closes) the socket from here on
    config.graceful_timeout = 0.5
    config.h2_max_concurrent_streams = 1000
    config.keep_alive_timeout = 60
    # Hypercorn closes a connection after 1,000 requests by default, abruptly for the streams in flight.
    config.keep_alive_max_requests = 10**9
    config.loglevel = "WARNING"
    config.accesslog = None
    ca_file = None
    if tls_dir is not None:
        ca = trustme.CA()
        ca_file, server_pem = tls_dir / f"{name}-ca.pem", tls_dir / f"{name}-server.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
        config.certfile = config.keyfile = str(server_pem)
        config.alpn_protocols = ["h2"]  # what a real FCM or APNs front end offers the adapter
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_quiet_on_cancel)
        started.set()
        loop.run_until_complete(serve(app, config, shutdown_trigger=stopping.wait, mode="asgi"))  # type: ignore[arg-type]

    thread = threading.Thread(target=run, name=f"{name}-peer", daemon=True)
    thread.start()
    started.wait()
    try:
        scheme = "https" if tls_dir is not None else "http"
        yield Http2Server(f"{scheme}://127.0.0.1:{port}", loop, stopping, ca_file)
    finally:

        def stop() -> None:
            if on_stop is not None:
                on_stop()
            stopping.set()

        loop.call_soon_threadsafe(stop)
        thread.join(timeout=10)
        loop.close()


def _quiet_on_cancel(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Shutting down cancels the connections still open; asyncio would log each as an error.
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        event = await receive()
        chunks.append(event.get("body", b""))
        if not event.get("more_body"):
            return b"".join(chunks)


async def respond(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def lifespan(receive: Receive, send: Send) -> None:
    """Hypercorn's lifespan protocol: nothing to start or stop."""
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
