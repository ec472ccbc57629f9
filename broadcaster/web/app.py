"""Builds the web application for one working directory: ``create_app(context)``."""

from __future__ import annotations

from fastapi import FastAPI

from broadcaster.context import AppContext
from broadcaster.web.app_consent_routes import app_consent_router
from broadcaster.web.unsubscribe_routes import unsubscribe_router


def create_app(context: AppContext) -> FastAPI:
    """The FastAPI app serving the working directory of ``context`` (the caller closes the context)."""
    # No interactive docs: the app faces the public internet, and its routes are for mail clients and the
    # city app's backend.
    app = FastAPI(title="Broadcaster", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(unsubscribe_router(context))
    app.include_router(app_consent_router(context))
    return app
