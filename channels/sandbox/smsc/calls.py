"""smpp34 calls that are never cancelled. smpp34 settles each call's future from one of its tokio threads,
under the GIL; a call cancelled from Python still takes the GIL later on that thread, and if the interpreter
is exiting by then the process aborts (``Fatal Python error: PyGILState_Release``). So a call is awaited with
a timeout that leaves it running, and shutdown waits until every call has settled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Calls:
    """The smpp34 calls of one SMSC loop that have not settled yet, and what each is."""

    def __init__(self) -> None:
        self._calls: dict[asyncio.Future[Any], str] = {}

    async def call(self, what: str, call: Awaitable[T], timeout: float | None = None) -> T:
        """Await an smpp34 call; on timeout raise TimeoutError but leave the call running (never cancel it)."""
        future: asyncio.Future[T] = asyncio.ensure_future(call)
        self._calls[future] = what
        future.add_done_callback(self._settled)
        done, _pending = await asyncio.wait({future}, timeout=timeout)
        if not done:
            raise TimeoutError(f"no answer within {timeout} s")
        return future.result()

    def _settled(self, future: asyncio.Future[Any]) -> None:
        self._calls.pop(future, None)
        if not future.cancelled():
            future.exception()  # retrieved: a call that timed out and failed later is not an error to log

    async def wait_settled(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for every call to settle; say which did not."""
        if self._calls:
            _done, pending = await asyncio.wait(set(self._calls), timeout=timeout)
            if pending:
                names = sorted(self._calls.get(f, "?") for f in pending)
                log.warning("sandbox SMSC: smpp34 calls did not settle before the stop: %s", ", ".join(names))
