"""``POST /city-app/devices``: the city app registers, refreshes or removes a person's push device, signed by
its backend like the consent endpoint (same key, same scheme: ``signed_requests``).

The signature is checked before the body is even parsed, the body before anything is written; every refusal
is a problem detail and changes nothing (docs/push.md, "Registration endpoint").
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from broadcaster.context import AppContext
from broadcaster.web.city_app_device_request import DeviceRequest, parse_device_request
from broadcaster.web.city_app_devices import record_device_request
from broadcaster.web.problems import Problem, problem_response
from broadcaster.web.signed_requests import city_app_body

log = logging.getLogger(__name__)

DEVICES_PATH = "/city-app/devices"
# A device request is a few hundred bytes (a token is at most 320 characters).
MAX_BODY_BYTES = 4 * 1024


def app_device_router(context: AppContext) -> APIRouter:
    security = context.settings.security

    def record(request: DeviceRequest) -> str:
        with context.sessions.begin() as session:
            return record_device_request(
                session,
                request,
                at=context.clock.now(),
                window_seconds=security.city_app_replay_window_seconds,
            )

    async def devices(request: Request) -> JSONResponse:
        try:
            body = await city_app_body(request, security, now=context.clock.now(), max_bytes=MAX_BODY_BYTES)
            outcome = await run_in_threadpool(record, parse_device_request(body))
        except Problem as problem:
            # The code only: neither the person's address nor the token belongs in a log line.
            log.warning("city-app device request refused: %s (HTTP %d)", problem.code, problem.status)
            return problem_response(problem)
        return JSONResponse({"status": outcome}, headers={"Cache-Control": "no-store"})

    router = APIRouter()
    router.add_api_route(DEVICES_PATH, devices, methods=["POST"], response_class=JSONResponse)
    return router
