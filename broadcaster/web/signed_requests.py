"""Requests signed by a trusted backend with a shared key: the signature check, and how a caller signs.

The scheme follows the usual webhook signatures (docs/architecture.md §5, "City-app consent endpoint"):
``X-Broadcaster-Timestamp`` is the Unix time in seconds, ``X-Broadcaster-Signature`` is
``v1=<hex HMAC-SHA256(key, "<timestamp>.<raw body>")>``. Signing the timestamp with the body means an old
request cannot be re-dated; the replay window bounds how long a captured one stays usable, and the caller's
nonce (checked by the route, in its own transaction) makes even that window single-use.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime

from starlette.requests import Request

from broadcaster.settings_sections import SecuritySettings
from broadcaster.web.problems import Problem

TIMESTAMP_HEADER = "X-Broadcaster-Timestamp"
SIGNATURE_HEADER = "X-Broadcaster-Signature"
SCHEME = "v1"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(rf"{SCHEME}=([0-9a-fA-F]{{64}})")


def signature(key: str, timestamp: str, body: bytes) -> str:
    """The ``X-Broadcaster-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds, as text)."""
    mac = hmac.new(key.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify(
    *, key: str, timestamp: str | None, signed: str | None, body: bytes, now: datetime, window_seconds: int
) -> None:
    """Returns when the signature is ours and the signed time within ±window of ``now``; otherwise raises
    ``Problem`` (403 when no key is configured, 401 for everything else)."""
    if not key:
        raise Problem(
            403,
            "not-configured",
            "Signed requests are not enabled",
            "Máy chủ chưa có khóa chung với ứng dụng ([security] city_app_key): mọi yêu cầu đều bị từ chối.",
        )
    if not timestamp or not signed:
        missing = TIMESTAMP_HEADER if not timestamp else SIGNATURE_HEADER
        raise _unauthorised("unsigned", f"Yêu cầu thiếu tiêu đề {missing}: chỉ nhận yêu cầu đã ký.")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise _unauthorised(
            "bad-timestamp", f"Tiêu đề {TIMESTAMP_HEADER} phải là thời điểm Unix tính bằng giây."
        )
    match = _SIGNATURE.fullmatch(signed.strip())
    if match is None:
        raise _unauthorised(
            "bad-signature", f"Tiêu đề {SIGNATURE_HEADER} phải có dạng {SCHEME}=<64 chữ số hex HMAC-SHA256>."
        )
    expected = signature(key, timestamp, body)
    # compare_digest: the time taken says nothing about how many leading characters were right.
    if not hmac.compare_digest(expected, f"{SCHEME}={match.group(1).lower()}"):
        raise _unauthorised(
            "bad-signature",
            f"Chữ ký trong {SIGNATURE_HEADER} không khớp với nội dung và thời điểm của yêu cầu.",
        )
    drift = abs(now.timestamp() - int(timestamp))
    if drift > window_seconds:
        raise _unauthorised(
            "stale-timestamp",
            f"Thời điểm ký ({TIMESTAMP_HEADER}) lệch {int(drift)} giây so với máy chủ, quá {window_seconds} "
            "giây cho phép: hãy ký lại yêu cầu và kiểm tra đồng hồ máy gửi.",
        )


def _unauthorised(code: str, detail: str) -> Problem:
    return Problem(401, code, "Request not signed as agreed", detail)


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The raw body (what the signature covers), refused with 413 as soon as it passes ``max_bytes``."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise Problem(
                413,
                "too-large",
                "Body too large",
                f"Nội dung yêu cầu dài quá {max_bytes} byte; một yêu cầu của ứng dụng chỉ cần vài trăm byte.",
            )
    return bytes(body)


async def city_app_body(
    request: Request, security: SecuritySettings, *, now: datetime, max_bytes: int
) -> bytes:
    """The body of a request from the city app's backend, once its signature holds under ``[security]
    city_app_key`` and replay window (``Problem`` otherwise): what every ``/city-app/`` route reads first."""
    body = await read_body(request, max_bytes=max_bytes)
    verify(
        key=security.city_app_key,
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signed=request.headers.get(SIGNATURE_HEADER),
        body=body,
        now=now,
        window_seconds=security.city_app_replay_window_seconds,
    )
    return body
