"""How big a push notification is on the wire, and the limits a campaign's push message must keep.

FCM HTTP v1 refuses a message whose payload (the keys and values of ``notification`` and ``data``) passes
4096 bytes (docs/push.md, "Limits"); APNs takes 4096 bytes too. A title or body far shorter is all a lock
screen shows, so the engine also refuses texts past ``TITLE_MAX_CHARS`` and ``BODY_MAX_CHARS``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "BODY_MAX_CHARS",
    "PAYLOAD_MAX_BYTES",
    "TITLE_MAX_CHARS",
    "PushSize",
    "measure",
    "payload",
]

PAYLOAD_MAX_BYTES = 4096
TITLE_MAX_CHARS = 100
BODY_MAX_CHARS = 1000


def payload(
    *, title: str, body: str, link: str | None, data: Mapping[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """The part of an FCM message the size limit counts: ``notification`` (title, body) and ``data`` (the
    deep link as ``link`` and any extra strings), as the push adapters send it (docs/push.md)."""
    extra = dict(data or {})
    if link:
        extra["link"] = link
    return {"notification": {"title": title, "body": body}, "data": extra}


@dataclass(frozen=True)
class PushSize:
    title_chars: int
    body_chars: int
    payload_bytes: int

    @property
    def too_large(self) -> bool:
        return self.payload_bytes > PAYLOAD_MAX_BYTES

    @property
    def title_too_long(self) -> bool:
        return self.title_chars > TITLE_MAX_CHARS

    @property
    def body_too_long(self) -> bool:
        return self.body_chars > BODY_MAX_CHARS

    @property
    def over_limits(self) -> bool:
        return self.too_large or self.title_too_long or self.body_too_long


def measure(*, title: str, body: str, link: str | None) -> PushSize:
    """The sizes of one rendered notification: UTF-8 bytes of its compact JSON payload (Vietnamese
    letters with diacritics take two or three bytes each)."""
    encoded = json.dumps(
        payload(title=title, body=body, link=link), ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    return PushSize(title_chars=len(title), body_chars=len(body), payload_bytes=len(encoded))
