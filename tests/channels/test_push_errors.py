"""The push adapters' error tables, row by row (docs/push.md "Errors"): an FCM or APNs answer → its class.

The answers are built as httpx responses, as the adapters receive them; the peers provoke the common ones
end to end (``test_fcm_adapter.py``, ``test_apns_adapter.py``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from channels.errors import (
    ChannelError,
    ConfigurationError,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)
from channels.push import apns_errors, fcm_errors
from channels.push.http2 import retry_after


def _fcm(
    status: int, code: str | None, message: str = "", extra: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    details: list[dict[str, Any]] = [{"@type": fcm_errors.FCM_ERROR_TYPE, "errorCode": code}] if code else []
    return {"error": {"code": status, "message": message, "status": "X", "details": details + (extra or [])}}


TOKEN_VIOLATION = {
    "@type": fcm_errors.BAD_REQUEST_TYPE,
    "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}],
}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, _fcm(404, "UNREGISTERED"), RecipientRejected),
        (403, _fcm(403, "SENDER_ID_MISMATCH"), RecipientRejected),
        (400, _fcm(400, "INVALID_ARGUMENT", extra=[TOKEN_VIOLATION]), RecipientRejected),
        (
            400,
            _fcm(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
            RecipientRejected,
        ),
        (400, _fcm(400, "INVALID_ARGUMENT", "Message is too big"), PermanentError),
        (429, _fcm(429, "QUOTA_EXCEEDED"), Throttled),
        (503, _fcm(503, "UNAVAILABLE"), TransientError),
        (500, _fcm(500, "INTERNAL"), TransientError),
        (401, _fcm(401, "THIRD_PARTY_AUTH_ERROR"), ConfigurationError),
        (401, _fcm(401, "APNS_AUTH_ERROR"), ConfigurationError),
        (401, _fcm(401, None, "Request had invalid authentication credentials."), ConfigurationError),
        (403, _fcm(403, None, "Permission denied"), ConfigurationError),
        (502, {}, TransientError),
        (429, {}, Throttled),
        (413, {}, PermanentError),
    ],
)
def test_fcm_answers(status: int, body: dict[str, Any], expected: type[ChannelError]) -> None:
    response = httpx.Response(status, content=json.dumps(body).encode())
    error = fcm_errors.classify(response, body)
    assert type(error) is expected, error
    assert str(error)


def test_fcm_quota_without_retry_after_waits_at_least_a_minute() -> None:
    body = _fcm(429, "QUOTA_EXCEEDED")
    error = fcm_errors.classify(httpx.Response(429), body)
    assert isinstance(error, Throttled)
    assert error.retry_after == fcm_errors.QUOTA_BACKOFF
    unavailable = fcm_errors.classify(
        httpx.Response(503, headers={"retry-after": "30"}), _fcm(503, "UNAVAILABLE")
    )
    assert isinstance(unavailable, TransientError)
    assert unavailable.retry_after == 30.0


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (410, "Unregistered", RecipientRejected),
        (400, "BadDeviceToken", RecipientRejected),
        (400, "DeviceTokenNotForTopic", RecipientRejected),
        (403, "InvalidProviderToken", ConfigurationError),
        (403, "ExpiredProviderToken", ConfigurationError),
        (403, "BadCertificate", ConfigurationError),
        (400, "BadTopic", ConfigurationError),
        (400, "TopicDisallowed", ConfigurationError),
        (429, "TooManyRequests", Throttled),
        (500, "InternalServerError", TransientError),
        (503, "ServiceUnavailable", TransientError),
        (503, "Shutdown", TransientError),
        (413, "PayloadTooLarge", PermanentError),
        (400, "BadPriority", PermanentError),
        (410, None, RecipientRejected),
        (403, None, ConfigurationError),
        (502, None, TransientError),
    ],
)
def test_apns_answers(status: int, reason: str | None, expected: type[ChannelError]) -> None:
    body = {"reason": reason} if reason else {}
    error = apns_errors.classify(httpx.Response(status, json=body), body)
    assert type(error) is expected, error
    assert error.code == (reason or str(status))


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
    assert retry_after(httpx.Headers({"retry-after": "120"}), now=now) == 120.0
    assert retry_after(httpx.Headers({"retry-after": "Mon, 30 Nov 2026 09:01:30 GMT"}), now=now) == 90.0
    assert retry_after(httpx.Headers({"retry-after": "soon"}), now=now) is None
    assert retry_after(httpx.Headers({}), now=now) is None
