"""Serve an ASGI application (a provider's local peer) with hypercorn on 127.0.0.1 in a background thread.

The listening socket is bound here, before the server thread starts, and handed to hypercorn by file
descriptor (``fd://``): the port is known at once and connections made before hypercorn runs wait in the
backlog, so a test never has to wait for the server to come up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework


@contextlib.contextmanager
def serving(app: Any, *, on_stop: Callable[[], Any] | None = None) -> Iterator[str]:
    """Yield the peer's base URL (``http://127.0.0.1:PORT``) while hypercorn serves ``app``.

    ``on_stop`` runs in the server's event loop before shutdown (a peer releases stalled answers there)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns (and closes) the socket from here
    config.graceful_timeout = 1.0
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve(cast(ASGIFramework, app), config, shutdown_trigger=stopping.wait))
        except BaseException as exc:  # reported to the test when it stops the peer
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"asgi-peer-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:

        def stop() -> None:
            if on_stop is not None:
                on_stop()
            stopping.set()

        loop.call_soon_threadsafe(stop)
        thread.join(timeout=10)
        if failure:
            raise RuntimeError(f"the peer on port {port} failed") from failure[0]
