"""``POST /city-app/consent/withdraw``: the city app's settings screen withdraws consent, signed by its backend.

The signature is checked before the body is even parsed, the body before anything is written; every refusal
is a problem detail and changes nothing. There is no route that grants (docs/architecture.md §5).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from broadcaster.context import AppContext
from broadcaster.web.city_app_request import AppWithdrawal, parse_withdrawal
from broadcaster.web.city_app_withdrawal import Outcome, record_app_withdrawal
from broadcaster.web.problems import Problem, problem_response
from broadcaster.web.signed_requests import city_app_body

log = logging.getLogger(__name__)

WITHDRAW_PATH = "/city-app/consent/withdraw"
# A withdrawal is a few hundred bytes; anything far bigger is not the app's backend.
MAX_BODY_BYTES = 16 * 1024


def app_consent_router(context: AppContext) -> APIRouter:
    security = context.settings.security

    def record(request: AppWithdrawal) -> Outcome:
        with context.sessions.begin() as session:
            return record_app_withdrawal(
                session,
                request,
                at=context.clock.now(),
                window_seconds=security.city_app_replay_window_seconds,
            )

    async def withdraw(request: Request) -> JSONResponse:
        try:
            body = await city_app_body(request, security, now=context.clock.now(), max_bytes=MAX_BODY_BYTES)
            outcome = await run_in_threadpool(record, parse_withdrawal(body))
        except Problem as problem:
            # The code only: a forged request's address is nobody's business, and a wrong key shows up here.
            log.warning("city-app request refused: %s (HTTP %d)", problem.code, problem.status)
            return problem_response(problem)
        return JSONResponse(
            {
                "status": "withdrawn",
                "purposes": outcome.purposes,
                "stopped_messages": outcome.stopped_messages,
            },
            headers={"Cache-Control": "no-store"},
        )

    router = APIRouter()
    router.add_api_route(WITHDRAW_PATH, withdraw, methods=["POST"], response_class=JSONResponse)
    return router
