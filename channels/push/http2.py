"""The HTTP/2 plumbing both push adapters share: a private asyncio loop in a thread of its own, one httpx
client on it, a cap on the requests in flight, and the translation of httpx's transport errors.

``send()`` is synchronous at the boundary (``channels/base.py``): the adapter hands a window's coroutine to
the loop and waits for its results. All requests of all windows are multiplexed as HTTP/2 streams over the
client's connection, so ``concurrency`` is streams in flight, not connections. The client speaks HTTP/2 only:
over ``https`` it is negotiated by ALPN (FCM and APNs both serve it), over ``http`` it is HTTP/2 with prior
knowledge (h2c), which the local peers in ``channels/sandbox/`` speak.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
from collections.abc import Awaitable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from channels.errors import ChannelError, ConfigurationError, ConnectionLost, OutcomeUnknown

T = TypeVar("T")

# httpx errors raised before any byte of the request went out: the provider provably has nothing.
_BEFORE_WRITE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def transport_error(exc: httpx.HTTPError, *, peer: str) -> ChannelError:
    """``ConnectionLost`` when the request was never written, ``OutcomeUnknown`` from the write on."""
    if isinstance(exc, _BEFORE_WRITE):
        return ConnectionLost(f"{peer} unreachable", code=type(exc).__name__, detail=str(exc) or None)
    return OutcomeUnknown(
        f"no answer from {peer} after the request was written",
        code=type(exc).__name__,
        detail=str(exc) or None,
    )


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when it has none (an empty or non-JSON error body)."""
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after(headers: httpx.Headers, *, now: datetime | None = None) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP-date, RFC 9110 §10.2.3), else None."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def positive_int(value: object, *, field: str) -> int:
    """A setting that must be a whole number of at least 1 (``concurrency``): ConfigurationError naming it."""
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigurationError(f"{field} must be a whole number, not {value!r}") from None
    if number < 1:
        raise ConfigurationError(f"{field} must be at least 1, not {number}")
    return number


def positive_seconds(value: object, *, field: str) -> float:
    """A duration setting in seconds above zero (``timeout``): ConfigurationError naming it."""
    try:
        seconds = float(str(value))
    except ValueError:
        raise ConfigurationError(f"{field} must be a number of seconds, not {value!r}") from None
    if not seconds > 0:
        raise ConfigurationError(f"{field} must be above 0 seconds, not {seconds}")
    return seconds


class Http2Runner:
    """One asyncio loop thread, one HTTP/2 ``httpx.AsyncClient`` and a semaphore of ``concurrency`` slots."""

    def __init__(self, *, name: str, timeout: float, concurrency: int) -> None:
        self._name = name
        self._timeout = timeout
        self._concurrency = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        self.run(self._make_client())

    async def _make_client(self) -> None:
        # Inside the loop: the client and the semaphore belong to it.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None, keepalive_expiry=60.0)
        self._client = httpx.AsyncClient(
            http1=False, http2=True, timeout=httpx.Timeout(self._timeout), limits=limits
        )
        self._slots = asyncio.Semaphore(self._concurrency)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise ConfigurationError(f"{self._name}: the adapter is not open")
        return self._client

    async def limited(self, work: Awaitable[T]) -> T:
        """Run ``work`` in one of the ``concurrency`` slots (requests in flight)."""
        assert self._slots is not None
        async with self._slots:
            return await work

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the loop and wait for it (from any thread but the loop's own)."""
        if self._loop is None:
            work.close()
            raise ConfigurationError(f"{self._name}: the adapter is not open")
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._client is not None:
            asyncio.run_coroutine_threadsafe(self._client.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = self._thread = None
        self._client = None
        self._slots = None
