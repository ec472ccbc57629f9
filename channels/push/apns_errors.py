"""APNs error answers → the error tree of ``channels/errors.py`` (docs/push.md, "APNs errors").

An error answer is an HTTP status and ``{"reason": ...}``; the reason decides, the status when it is unknown.
"""

from __future__ import annotations

from typing import Any

import httpx

from channels.errors import (
    ChannelError,
    ConfigurationError,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)
from channels.push.http2 import retry_after

# APNs gives no Retry-After on 429: wait this long before that token is tried again.
THROTTLE_BACKOFF = 1.0

# reason → class (Apple's table of error responses, as docs/push.md gives it).
REASONS: dict[str, type[ChannelError]] = {
    # The token: the app is gone from the device, or the token is malformed or belongs to another app.
    "Unregistered": RecipientRejected,  # 410
    "BadDeviceToken": RecipientRejected,  # 400 (also a sandbox token sent to production)
    "DeviceTokenNotForTopic": RecipientRejected,  # 400
    # The settings: the team's key, the provider token, the topic (bundle id), the endpoint.
    "BadCertificate": ConfigurationError,
    "BadCertificateEnvironment": ConfigurationError,
    "ExpiredProviderToken": ConfigurationError,
    "InvalidProviderToken": ConfigurationError,
    "MissingProviderToken": ConfigurationError,
    "Forbidden": ConfigurationError,
    "BadTopic": ConfigurationError,
    "TopicDisallowed": ConfigurationError,
    "MissingTopic": ConfigurationError,
    "BadPath": ConfigurationError,
    "MethodNotAllowed": ConfigurationError,
    # Later.
    "TooManyRequests": Throttled,  # 429: too many notifications to this one device
    "TooManyProviderTokenUpdates": Throttled,
    "InternalServerError": TransientError,
    "ServiceUnavailable": TransientError,
    "Shutdown": TransientError,
    # The message itself.
    "PayloadTooLarge": PermanentError,  # 413
}


def classify(response: httpx.Response, body: dict[str, Any]) -> ChannelError:
    """The error for a non-200 answer to ``POST /3/device/{token}``."""
    status = response.status_code
    reason = str(body.get("reason") or "") or None
    kind = REASONS.get(reason or "") or _by_status(status)
    code = reason or str(status)
    wait = retry_after(response.headers)
    if kind is Throttled:
        return Throttled("APNs asks to slow down", code=code, retry_after=wait or THROTTLE_BACKOFF)
    if kind is TransientError:
        return TransientError("APNs failed for now", code=code, retry_after=wait)
    if kind is RecipientRejected:
        return RecipientRejected("APNs refused the device token", code=code, detail=f"HTTP {status}")
    if kind is ConfigurationError:
        return ConfigurationError(
            "APNs refused the team's key, token or topic", code=code, detail=f"HTTP {status}"
        )
    return PermanentError("APNs refused the notification", code=code, detail=f"HTTP {status}")


def _by_status(status: int) -> type[ChannelError]:
    if status == 410:
        return RecipientRejected
    if status == 429:
        return Throttled
    if status >= 500:
        return TransientError
    if status in (403, 404, 405):
        return ConfigurationError
    return PermanentError
