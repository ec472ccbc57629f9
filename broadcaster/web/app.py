"""Builds the web application for one working directory: ``create_app(context)``.

The staff UI (server-rendered pages under ``broadcaster.web.ui``, sign-in in ``auth_routes``), the REST API
for the city's systems (its own FastAPI app under ``/api/v1``, with its own OpenAPI document) and the public
routes the engine's messages link to (one-click unsubscribe, the city app's consent endpoint).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from broadcaster import i18n
from broadcaster.context import AppContext
from broadcaster.web.api import api_http_error, create_api
from broadcaster.web.app_consent_routes import app_consent_router
from broadcaster.web.app_device_routes import app_device_router
from broadcaster.web.app_push_ack_routes import app_push_ack_router
from broadcaster.web.auth import Forbidden, SignInRequired
from broadcaster.web.auth_routes import router as auth_router
from broadcaster.web.language import LanguageMiddleware
from broadcaster.web.metrics_route import metrics_router
from broadcaster.web.security_headers import SecurityHeadersMiddleware
from broadcaster.web.templating import STATIC_DIR, render
from broadcaster.web.ui import ROUTERS
from broadcaster.web.unsubscribe_routes import unsubscribe_router
from broadcaster.web.webhook_routes import webhook_router


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _sign_in_required(request: Request, _exc: Exception) -> Response:
    if request.method in ("GET", "HEAD") and _wants_html(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)
    return JSONResponse({"detail": i18n.gettext("Sign in first.")}, status_code=401)


def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    message = (
        i18n.gettext("The form has expired or did not come from this site; reload the page and try again.")
        if exc.csrf
        else i18n.gettext("Your role may not do this.")
    )
    return render(request, "error.html", status_code=403, title=i18n.gettext("Not allowed"), message=message)


async def _http_error(request: Request, exc: Exception) -> Response:
    """A path under /api/ that the mount does not match (e.g. a newline in it: the mount's pattern stops at
    one) still answers as the API does, with a problem; other paths keep FastAPI's answer."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api/"):
        return api_http_error(request, exc)
    return await http_exception_handler(request, exc)


@asynccontextmanager
async def _frozen_heap(_app: FastAPI) -> AsyncIterator[None]:
    """What exists once the app is built (modules, routes, templates, mappers: some 220,000 objects) lives as
    long as the app: frozen out of the cyclic collector, so a full collection no longer walks them all. It took
    a page ~200 ms every few dozen requests (benchmarks/README.md, "Web pages"). Unfrozen when the app stops,
    so whatever died in the meantime is collected again."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def create_app(context: AppContext) -> FastAPI:
    """The FastAPI app serving the working directory of ``context`` (the caller closes the context)."""
    # The UI's routes are not an API: no OpenAPI document or interactive docs for them (the REST API under
    # /api/v1 serves its own).
    app = FastAPI(title="Broadcaster", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_frozen_heap)
    app.state.context = context
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # The API first: the router tries routes in order, and the single-message API is the busiest path.
    app.mount("/api/v1", create_api(context))
    app.include_router(unsubscribe_router(context))
    app.include_router(app_consent_router(context))
    app.include_router(app_device_router(context))
    app.include_router(app_push_ack_router(context))
    app.include_router(webhook_router(context))
    app.include_router(auth_router)
    app.include_router(metrics_router(context))
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(LanguageMiddleware, default=i18n.choose(context.settings.org.language))
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def app_from_environment() -> FastAPI:
    """The app of the working directory ``BROADCASTER_CONFIG`` names: uvicorn's factory in each worker
    process of ``broadcaster serve --workers N`` (the context lives as long as the process)."""
    return create_app(AppContext.load())
