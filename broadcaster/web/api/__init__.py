"""The REST API for the city's systems, mounted at ``/api/v1`` with its own OpenAPI 3.1 document."""

from __future__ import annotations

from fastapi import FastAPI

from broadcaster.context import AppContext


def create_api(context: AppContext) -> FastAPI:
    api = FastAPI(
        title="Broadcaster API",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    api.state.context = context
    return api
