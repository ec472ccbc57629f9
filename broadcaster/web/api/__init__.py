"""The REST API for the city's systems, mounted at ``/api/v1`` with its own OpenAPI 3.1 document.

Every operation declares its action with ``Depends(api_requires(…))`` (``broadcaster.web.api.auth``); errors
are RFC 9457 problem details (``broadcaster.web.problems``) in the caller's language, naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from broadcaster.context import AppContext
from broadcaster.i18n import gettext as _
from broadcaster.web.api import campaigns, consent, contacts, messages, notifications, reports
from broadcaster.web.api.auth import RateLimiter
from broadcaster.web.problems import Problem, problem_response


def _field(location: Sequence[Any]) -> str:
    """``("body", "personalisation", "ten")`` → ``personalisation.ten``; a header or query names itself."""
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": ""}
    field = _field(first.get("loc", ("body",)))
    return problem_response(
        Problem(
            422,
            "invalid-request",
            _("Invalid request"),
            _("The field %(field)s is not valid: %(reason)s")
            % {"field": field, "reason": first.get("msg", "")},
            field=field,
        )
    )


def api_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    titles = {404: _("Not found"), 405: _("Method not allowed")}
    title = titles.get(exc.status_code, _("Request refused"))
    return problem_response(Problem(exc.status_code, f"http-{exc.status_code}", title, title))


def _problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc)


# The operations' routers, in the order of the OpenAPI document (the permission test reads them). The
# single-message API first: a request is matched against the routes in this order, and it is the busiest.
API_MODULES = (notifications, campaigns, messages, contacts, consent, reports)


def create_api(context: AppContext) -> FastAPI:
    api = FastAPI(
        title="Broadcaster API",
        version="1",
        description="The REST API of Broadcaster for the city's systems (README, 'REST API').",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    api.state.context = context
    api.state.rate_limiter = RateLimiter()
    api.add_exception_handler(Problem, _problem)
    api.add_exception_handler(RequestValidationError, _invalid)
    api.add_exception_handler(HTTPException, api_http_error)
    for module in API_MODULES:
        api.include_router(module.router)
    return api
