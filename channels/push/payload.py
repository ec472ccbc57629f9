"""What both push adapters read from an ``OutboundMessage`` beyond title and body, and the size they send.

``options["link"]`` is a deep link, ``options["data"]`` extra key/value data whose values must be strings
(FCM's ``data`` map takes strings only; APNs gets the same keys beside ``aps``). A wrong option is a
``PayloadError`` naming the field, reported as a ``PermanentError`` for that message alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from channels.errors import PermanentError

# Both FCM (non-topic messages) and APNs (alert notifications) refuse a payload over 4 KB (docs/push.md).
MAX_PAYLOAD_BYTES = 4096


class PayloadError(ValueError):
    """A message option the push payload cannot carry."""


def extra_data(options: Mapping[str, Any]) -> dict[str, str]:
    """``options["data"]`` with ``options["link"]`` added as ``link``; all values strings."""
    data: dict[str, str] = {}
    extra = options.get("data")
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise PayloadError(f"options.data must be a mapping of strings, not {type(extra).__name__}")
        for key, value in extra.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise PayloadError(f"options.data[{key!r}] must be a string, not {type(value).__name__}")
            data[key] = value
    link = options.get("link")
    if link is not None:
        if not isinstance(link, str) or not link:
            raise PayloadError(f"options.link must be a non-empty string, not {link!r}")
        data["link"] = link
    return data


def encoded(payload: Mapping[str, Any]) -> bytes:
    """The request body as sent: compact UTF-8 JSON (its length is what the providers' limits count)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def request_body(build: Callable[[], Mapping[str, Any]], *, peer: str) -> bytes:
    """``build()`` encoded; ``PermanentError`` for that message alone when an option cannot be carried or
    the body passes the 4 KB the providers take."""
    try:
        content = encoded(build())
    except PayloadError as exc:
        raise PermanentError(str(exc)) from None
    if len(content) > MAX_PAYLOAD_BYTES:
        raise PermanentError(f"the {peer} payload is {len(content)} bytes, over {peer}'s {MAX_PAYLOAD_BYTES}")
    return content


def mask_token(token: str) -> str:
    """A device token in logs: enough to tell two apart, not enough to send to."""
    return token[:6] + "…" if len(token) > 6 else "…"
