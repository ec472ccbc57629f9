"""``GET /metrics`` in ``broadcaster serve``: the Prometheus metrics of ``broadcaster metrics``, for an
installation that would rather not run one more process. Off unless ``[metrics] token`` is set, and then only
for a scraper that sends ``Authorization: Bearer <token>``: the figures say how busy the agency is, which is
not for the public pages ``serve`` also answers (docs/supervision.md, "Metrics")."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from broadcaster.context import AppContext
from broadcaster.observe.metrics import registry_for


def metrics_router(context: AppContext) -> APIRouter:
    router = APIRouter()
    token = context.settings.metrics.token
    if not token:
        return router
    registry = registry_for(context)
    expected = f"Bearer {token}".encode()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = await run_in_threadpool(generate_latest, registry)  # the database is read synchronously
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
