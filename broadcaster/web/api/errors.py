"""The services' ``UserError``s as problems: what the caller can fix is never a 500.

``NotFound`` → 404, ``StateError`` (the thing is in the wrong state for this) → 409, any other ``UserError``
→ 400. The detail is the service's own message (the same text the CLI prints); the title is translated.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, Field

from broadcaster.errors import NotFound, StateError, UserError
from broadcaster.i18n import gettext as _
from broadcaster.web.problems import PROBLEM_MEDIA_TYPE, Problem


def problem_of(exc: UserError, *, field: str | None = None) -> Problem:
    if isinstance(exc, NotFound):
        return Problem(404, "not-found", _("Not found"), str(exc), field=field)
    if isinstance(exc, StateError):
        return Problem(409, "conflict", _("Conflict"), str(exc), field=field)
    return Problem(400, "refused", _("Request refused"), str(exc), field=field)


@contextmanager
def service_errors(*, field: str | None = None) -> Iterator[None]:
    """Run a service call; its ``UserError`` leaves as a problem (the transaction around it rolls back)."""
    try:
        yield
    except UserError as exc:
        raise problem_of(exc, field=field) from None


class ProblemBody(BaseModel):
    """RFC 9457 problem details, with ``field`` naming the input at fault."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    problems: list[dict[str, Any]] | None = Field(
        default=None, description="An invalid campaign's problems, each with file, line and field."
    )


def documented(description: str) -> dict[str, Any]:
    return {"model": ProblemBody, "description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


# Every operation may answer these (documented so that the OpenAPI document is complete).
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: documented("Refused by a rule of the service"),
    401: documented("No valid API key"),
    403: documented("The key's role may not do this"),
    404: documented("Not found (or not a campaign this key may use)"),
    409: documented("The thing is not in a state that allows this"),
    422: documented("Invalid input; field names it"),
    429: documented("Rate limit reached; see Retry-After"),
}
