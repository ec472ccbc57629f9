"""FCM HTTP v1 error answers → the error tree of ``channels/errors.py`` (docs/push.md, "FCM errors").

An error body is ``{"error": {"code", "message", "status", "details": [...]}}``; the detail of type
``google.firebase.fcm.v1.FcmError`` carries the ``errorCode`` that decides. Without one, the HTTP status does.
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

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# Google asks for at least a minute before retrying a QUOTA_EXCEEDED without Retry-After.
QUOTA_BACKOFF = 60.0

# errorCode → class (FCM's ErrorCode enum, as docs/push.md tabulates it).
ERROR_CODES: dict[str, type[ChannelError]] = {
    "UNREGISTERED": RecipientRejected,  # 404: the app instance is gone, the token is dead
    "SENDER_ID_MISMATCH": RecipientRejected,  # 403: the token belongs to another sender
    "QUOTA_EXCEEDED": Throttled,  # 429: project, device or topic rate
    "UNAVAILABLE": TransientError,  # 503: overloaded
    "INTERNAL": TransientError,  # 500
    "THIRD_PARTY_AUTH_ERROR": ConfigurationError,  # 401: the APNs key or web-push credential in Firebase is wrong
    "APNS_AUTH_ERROR": ConfigurationError,  # its older name
    "INVALID_ARGUMENT": PermanentError,  # 400: RecipientRejected when it names the token (below)
}


def error_code(body: dict[str, Any]) -> str | None:
    """The FcmError ``errorCode`` of an error body, if it has one."""
    for detail in _details(body):
        if detail.get("@type") == FCM_ERROR_TYPE and isinstance(detail.get("errorCode"), str):
            return str(detail["errorCode"])
    return None


def names_the_token(body: dict[str, Any]) -> bool:
    """An INVALID_ARGUMENT about the registration token itself (a malformed or truncated token)."""
    for detail in _details(body):
        if detail.get("@type") == BAD_REQUEST_TYPE:
            for violation in detail.get("fieldViolations") or []:
                if isinstance(violation, dict) and violation.get("field") == "message.token":
                    return True
    message = (
        str(body.get("error", {}).get("message", "")).lower() if isinstance(body.get("error"), dict) else ""
    )
    return "registration token" in message


def classify(response: httpx.Response, body: dict[str, Any]) -> ChannelError:
    """The error for a non-2xx answer to ``messages:send``."""
    status = response.status_code
    code = error_code(body)
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    shown = code or str(error.get("status") or status)
    detail = str(error.get("message") or response.text[:200]) or None
    wait = retry_after(response.headers)
    kind = ERROR_CODES.get(code) if code else None
    if kind is PermanentError and names_the_token(body):
        kind = RecipientRejected
    if kind is None:
        kind = _by_status(status)
    if kind is Throttled:
        return Throttled(
            "FCM asks to slow down", code=shown, detail=detail, retry_after=wait or QUOTA_BACKOFF
        )
    if kind is TransientError:
        return TransientError("FCM failed for now", code=shown, detail=detail, retry_after=wait)
    if kind is RecipientRejected:
        return RecipientRejected("FCM refused the device token", code=shown, detail=detail)
    if kind is ConfigurationError:
        return ConfigurationError("FCM refused the project's credentials", code=shown, detail=detail)
    return PermanentError("FCM refused the message", code=shown, detail=detail)


def _by_status(status: int) -> type[ChannelError]:
    if status == 429:
        return Throttled
    if status >= 500:
        return TransientError
    if status in (401, 403, 404):  # credentials, project permissions, an unknown project
        return ConfigurationError
    return PermanentError


def _details(body: dict[str, Any]) -> list[dict[str, Any]]:
    error = body.get("error")
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
