"""``POST /webhooks/{type}/{provider}``: a provider posts its events (Zalo ZNS deliveries) here.

Only a provider whose adapter declares ``capabilities.webhook`` has the route, and its adapter class checks
the request (``verify_inbound(headers, body, options)``, reached through the registry: the engine names no
protocol). A genuine body is stored as an inbound record of the provider's channel, as it came, and applied
by the usual machinery (``outbox.inbound``); the answer follows the commit at once, since Zalo wants one
within 2 seconds. An unsigned or badly signed request gets 401 and nothing is stored (docs/social.md).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from broadcaster.context import AppContext
from broadcaster.outbox.inbound import inbound_batch_handler
from broadcaster.provider_shapes import capabilities_of
from broadcaster.web.problems import Problem, problem_response
from broadcaster.web.signed_requests import read_body
from channels import registry

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/{provider_type}/{provider}"
# A delivery event is well under a kilobyte; a provider batching a few stays far below this.
MAX_BODY_BYTES = 64 * 1024


def webhook_router(context: AppContext) -> APIRouter:
    def store(provider: str, channel: str, payload: dict[str, Any]) -> None:
        inbound_batch_handler(context.sessions, provider=provider, channel=channel, clock=context.clock)(
            [payload]
        )

    async def webhook(provider_type: str, provider: str, request: Request) -> JSONResponse:
        try:
            settings = context.settings.providers.get(provider)
            if settings is None or settings.type != provider_type or not capabilities_of(settings).webhook:
                raise Problem(404, "unknown-webhook", "No such webhook", "Không có webhook này.")
            body = await read_body(request, max_bytes=MAX_BODY_BYTES)
            adapter = registry.load_adapter_class(settings.type)
            if not adapter.verify_inbound(dict(request.headers), body, settings.options()):
                raise Problem(401, "bad-signature", "Bad signature", "Chữ ký của yêu cầu không hợp lệ.")
            payload = _payload(body)
            await run_in_threadpool(store, provider, settings.channel, payload)
        except Problem as problem:
            log.warning(
                "webhook request for %s refused: %s (HTTP %d)", provider, problem.code, problem.status
            )
            return problem_response(problem)
        return JSONResponse({"status": "stored"}, headers={"Cache-Control": "no-store"})

    router = APIRouter()
    router.add_api_route(WEBHOOK_PATH, webhook, methods=["POST"], response_class=JSONResponse)
    return router


def _payload(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise Problem(422, "bad-body", "Not a JSON object", "Nội dung phải là một đối tượng JSON.")
    return parsed
