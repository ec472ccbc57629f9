"""Graph API error answers → the channel error tree, by ``error.code`` (docs/social.md, "Graph API errors").

The recovery table is the Graph API's error-handling guide, as docs/social.md records it: retry later for
1, 2, 4, 17, 341, 368; re-authorise for 190 (subcodes 458–467), 102, 10, 200–299 and 3; change the content for 506 (duplicate post) and 1609005 (link could not be read).
Two Page-specific throttling codes (32, 80001) are added from the Pages rate-limit family and marked
unconfirmed in docs/social.md. An unknown code is a ``PermanentError`` that keeps the code, so that the
message fails visibly instead of being retried blindly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from channels.errors import (
    ChannelError,
    ConfigurationError,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)
from channels.social.transport import Answer, retry_after

# error.code → class. Codes 200–299 (permissions) are a range, handled in ``error_class``.
GRAPH_CODES: Mapping[int, type[ChannelError]] = {
    1: TransientError,  # unknown error, possibly a temporary downtime
    2: TransientError,  # service temporarily unavailable
    4: Throttled,  # application request limit reached
    17: Throttled,  # user request limit reached
    32: Throttled,  # Page request limit reached [unconfirmed]
    341: Throttled,  # application limit reached
    368: TransientError,  # temporarily blocked for policy violations: wait
    80001: Throttled,  # too many calls to this Page account (BUC) [unconfirmed]
    3: ConfigurationError,  # the app lacks the capability
    10: ConfigurationError,  # permission denied
    102: ConfigurationError,  # session key invalid or no longer valid
    190: ConfigurationError,  # access token expired or invalid (subcodes 458–467 say why)
    506: PermanentError,  # duplicate post: the same text was just posted to this page
    1609005: PermanentError,  # the link could not be read (scrape error)
}

# error.code 100 (invalid parameter) with subcode 33: "Object with ID … does not exist, cannot be loaded due
# to missing permissions, or does not support this operation": the page itself cannot be posted to.
_NO_SUCH_OBJECT = (100, 33)


def error_class(code: int | None, subcode: int | None, status: int) -> type[ChannelError]:
    """The class for one Graph error; ``status`` decides when the body carried no code."""
    if code is None:
        if status == 429:
            return Throttled
        return TransientError if status >= 500 else PermanentError
    if (code, subcode) == _NO_SUCH_OBJECT:
        return RecipientRejected
    if 200 <= code <= 299:
        return ConfigurationError
    return GRAPH_CODES.get(code, PermanentError)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def usage_delay(headers: Mapping[str, str]) -> float | None:
    """Seconds until access comes back, from ``X-Business-Use-Case-Usage`` (its
    ``estimated_time_to_regain_access`` is in minutes); ``None`` when the header is absent or unreadable."""
    raw = {k.lower(): v for k, v in headers.items()}.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes = [
        _int(entry.get("estimated_time_to_regain_access"))
        for entries in (usage.values() if isinstance(usage, dict) else [])
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    known = [m for m in minutes if m is not None]
    return max(known) * 60.0 if known else None


def graph_error(answer: Answer, *, what: str) -> ChannelError:
    """The error for a Graph answer that is not a success; ``what`` says what was asked ("post to page 123")."""
    error = answer.body.get("error")
    error = error if isinstance(error, dict) else {}
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    cls = error_class(code, subcode, answer.status)
    label = f"{code}" if subcode is None else f"{code}/{subcode}"
    detail = str(error.get("message") or answer.text[:200] or f"HTTP {answer.status}")
    message = f"Graph API refused to {what}"
    if code is None:
        label = f"HTTP {answer.status}"
    if issubclass(cls, TransientError):
        hint = retry_after(answer.headers)
        if hint is None:
            hint = usage_delay(answer.headers)
        return cls(message, code=label, detail=detail, retry_after=hint)
    return cls(message, code=label, detail=detail)
