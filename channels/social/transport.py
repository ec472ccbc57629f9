"""One HTTP exchange with a social provider, its transport failures translated into the channel error tree.

Where a request failed decides whether the provider may have it: a failure while connecting (or waiting for a
pooled connection) happened before any byte of the request went, so it is ``ConnectionLost`` and safe to send
again; anything from the write on (a write error, a read timeout, a connection closed without an answer) leaves
the provider possibly holding the request, so it is ``OutcomeUnknown``. This is the one place where httpx's
exceptions meet ours (httpx's own habit at its transport boundary). ``not_sent`` is the error of a message that
a window left unsent after a refusal that would have hit it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from channels.errors import ChannelError, ConnectionLost, OutcomeUnknown, TransientError

# Raised before the request was written: the provider cannot have it.
_BEFORE_WRITE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's HTTP answer: its status, headers and JSON body (``{}`` when the body is not a JSON object)."""

    status: int
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    text: str


def exchange(client: httpx.Client, request: httpx.Request, *, peer: str) -> Answer:
    """Send ``request`` and return the answer; ``ConnectionLost`` or ``OutcomeUnknown`` when none came.

    ``peer`` names the provider in the error ("Graph API", "ZNS")."""
    try:
        response = client.send(request)
    except _BEFORE_WRITE as exc:
        raise ConnectionLost(f"{peer} unreachable", detail=f"{type(exc).__name__}: {exc}") from exc
    except httpx.TransportError as exc:  # write/read errors and timeouts, a connection closed mid-exchange
        raise OutcomeUnknown(
            f"no answer from {peer} after the request was sent", detail=f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        parsed = response.json()
    except ValueError:
        parsed = {}
    body = parsed if isinstance(parsed, dict) else {}
    return Answer(status=response.status_code, headers=dict(response.headers), body=body, text=response.text)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` header in seconds (RFC 9110 §10.2.3, delay-seconds form), if given and readable."""
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # the HTTP-date form: no provider here is known to use it
    return max(seconds, 0.0)


def not_sent(cause: ChannelError) -> ChannelError:
    """An error of ``cause``'s class for a message left unsent because of it (nothing of it was written)."""
    text = f"not sent: an earlier message of the window was refused ({cause})"
    if isinstance(cause, TransientError):
        return type(cause)(text, code=cause.code, detail=cause.detail, retry_after=cause.retry_after)
    return type(cause)(text, code=cause.code, detail=cause.detail)
