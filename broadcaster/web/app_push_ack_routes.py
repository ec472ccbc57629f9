"""``POST /city-app/push-shown``: the city app's backend says a push notification was shown on the device,
signed like the consent and device endpoints (``signed_requests``; the nonces are shared).

The body names the message by the id the notification carries (``data.message_id``, set by
``outbox/composition.py``) and the device token it went to. The message becomes ``delivered`` (a real
delivery signal, unlike a provider's acceptance) and a waiting fallback for the person is cancelled
(docs/social.md, "Fallback"). Every refusal is a problem detail and changes nothing.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from broadcaster.context import AppContext
from broadcaster.devices import TOKEN_PATTERN
from broadcaster.outbox.acknowledgements import acknowledge_push
from broadcaster.web.app_nonces import use_nonce
from broadcaster.web.city_app_request import NONCE_PATTERN, invalid
from broadcaster.web.problems import Problem, problem_response
from broadcaster.web.signed_requests import city_app_body

log = logging.getLogger(__name__)

PUSH_SHOWN_PATH = "/city-app/push-shown"
MAX_BODY_BYTES = 4 * 1024


class PushShownBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    nonce: str = Field(pattern=NONCE_PATTERN)
    message_id: str = Field(pattern=r"^[1-9][0-9]{0,18}$")
    token: str = Field(pattern=TOKEN_PATTERN)


def parse_push_shown(body: bytes) -> PushShownBody:
    try:
        return PushShownBody.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "json_invalid":
            raise Problem(
                400, "bad-json", "Body is not JSON", "Nội dung yêu cầu không phải JSON hợp lệ."
            ) from None
        field = ".".join(str(part) for part in first["loc"]) or None
        if first["type"] == "extra_forbidden":
            raise invalid(
                field,
                "unknown-field",
                f"Trường “{field}” không được chấp nhận: chỉ có nonce, message_id, token.",
            ) from None
        if first["type"] == "missing":
            raise invalid(field, "missing-field", f"Thiếu trường “{field}”.") from None
        raise invalid(
            field, f"bad-{field or 'body'}".replace("_", "-"), f"Trường “{field}” không hợp lệ."
        ) from None


def app_push_ack_router(context: AppContext) -> APIRouter:
    security = context.settings.security

    def record(request: PushShownBody) -> str:
        with context.sessions.begin() as session:
            now = context.clock.now()
            use_nonce(session, request.nonce, at=now, window_seconds=security.city_app_replay_window_seconds)
            outcome = acknowledge_push(
                session, message_id=int(request.message_id), token=request.token, now=now
            )
            if outcome is None:
                raise invalid(
                    "message_id",
                    "unknown-message",
                    "Không có thông báo đẩy đã gửi nào với “message_id” này đến thiết bị có “token” này.",
                )
            return outcome

    async def push_shown(request: Request) -> JSONResponse:
        try:
            body = await city_app_body(request, security, now=context.clock.now(), max_bytes=MAX_BODY_BYTES)
            outcome = await run_in_threadpool(record, parse_push_shown(body))
        except Problem as problem:
            log.warning("city-app push acknowledgement refused: %s (HTTP %d)", problem.code, problem.status)
            return problem_response(problem)
        return JSONResponse({"status": outcome}, headers={"Cache-Control": "no-store"})

    router = APIRouter()
    router.add_api_route(PUSH_SHOWN_PATH, push_shown, methods=["POST"], response_class=JSONResponse)
    return router
