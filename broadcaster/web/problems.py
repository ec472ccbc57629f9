"""Errors of the machine-facing routes as RFC 9457 problem details (``application/problem+json``).

A route raises ``Problem``; ``problem_response`` turns it into the JSON body: a stable ``type`` the caller
can branch on, the HTTP ``status``, a short ``title`` and a ``detail`` for the person reading the caller's
logs, and ``field`` naming the input at fault. The REST API translates title and detail into the request's
language (``Accept-Language``: vi or en); the city app's endpoint answers in English and Vietnamese.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A URN rather than a URL: RFC 9457 §3.1.1 allows any URI, and there is no public page to point at.
TYPE_PREFIX = "urn:broadcaster:problem:"


class Problem(Exception):
    """A request refused; nothing was written. ``code`` becomes the problem type, ``field`` names the input."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.field = field
        self.retry_after = retry_after
        # More members of the body (RFC 9457 §3.2), e.g. every problem of an invalid campaign.
        self.extensions = extensions or {}


def problem_response(problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + problem.code,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.field is not None:
        body["field"] = problem.field  # an extension member (RFC 9457 §3.2)
    body.update(problem.extensions)
    headers = {"Cache-Control": "no-store"}
    if problem.retry_after is not None:
        headers["Retry-After"] = str(problem.retry_after)
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)
