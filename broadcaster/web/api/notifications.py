"""Single urgent messages, like GOV.UK Notify's ``POST /v2/notifications/sms|email``: one message to one
address from an approved campaign (``broadcaster.outbox.single``), and its status and delivery events.

A key sees a message created through the API of any campaign it may use (not only its own: a key is
rotated, the messages stay the system's); messages of campaign runs are not visible here (404).
"""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from broadcaster.i18n import gettext as _
from broadcaster.masking import mask_address, must_mask
from broadcaster.outbox.queues import Enqueuer
from broadcaster.outbox.single import (
    Refused,
    SingleRequest,
    UrgentChunker,
    VersionCache,
    create_single_message,
    find_single,
    reference_of,
    write_turn,
)
from broadcaster.web.api.auth import ApiCaller, api_requires
from broadcaster.web.api.errors import PROBLEMS
from broadcaster.web.api.idempotency import replay_or_run
from broadcaster.web.auth import context_of
from broadcaster.web.problems import Problem
from channels.base import Channel

router = APIRouter(tags=["notifications"], responses=PROBLEMS)
_setup = threading.Lock()


class _Single(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str = Field(min_length=1, max_length=100)
    personalisation: dict[str, Any] = Field(default_factory=dict)
    reference: str | None = Field(default=None, max_length=255)


class SmsRequest(_Single):
    phone_number: str = Field(min_length=1, max_length=40)


class EmailRequest(_Single):
    email_address: str = Field(min_length=1, max_length=320)


def _versions(request: Request) -> VersionCache:
    """One cache of approved versions per API app (per worker process)."""
    state = request.app.state
    with _setup:
        if getattr(state, "versions", None) is None:
            state.versions = VersionCache(context_of(request).settings)
    versions: VersionCache = state.versions
    return versions


def _chunker(request: Request) -> UrgentChunker:
    """The process's chunker, enqueuing on the engine's queues (Celery on the configured broker). A test
    sets ``app.state.enqueuer`` (and ``chunk_in_background = False`` to have each request chunk itself)."""
    state = request.app.state
    with _setup:
        if getattr(state, "chunker", None) is None:
            context = context_of(request)
            enqueuer: Enqueuer | None = getattr(state, "enqueuer", None)
            if enqueuer is None:
                from broadcaster.tasks import CeleryEnqueuer, configure  # Celery's imports are heavy

                configure(context.settings)
                enqueuer = CeleryEnqueuer()
            sink = enqueuer

            def enqueue(chunk_id: int, queue: str) -> None:
                sink.dispatch_chunk(chunk_id, queue=queue)

            state.chunker = UrgentChunker(
                context.sessions,
                context.clock,
                enqueue,
                background=getattr(state, "chunk_in_background", True),
            )
    chunker: UrgentChunker = state.chunker
    return chunker


def _problem(refused: Refused) -> Problem:
    params = refused.params
    texts = {
        "unknown_campaign": (404, _("Not found"), _("There is no campaign %(id)s.")),
        "not_sendable": (
            409,
            _("Campaign not sendable"),
            _("The campaign %(campaign)s has no approved version it may send (it is %(state)s)."),
        ),
        "no_channel": (
            422,
            _("Invalid request"),
            _("The campaign %(campaign)s has no %(channel)s channel."),
        ),
        "invalid_address": (422, _("Invalid request"), _("The address is not valid: %(reason)s")),
        "not_mobile": (
            422,
            _("Invalid request"),
            _("This number is not a mobile number and cannot receive SMS."),
        ),
        "missing_personalisation": (
            422,
            _("Invalid request"),
            _("The template needs the personalisation value %(name)s."),
        ),
        "render_failed": (
            422,
            _("Invalid request"),
            _("The message could not be written with this personalisation: %(reason)s"),
        ),
    }
    status, title, detail = texts[refused.code]
    return Problem(status, refused.code.replace("_", "-"), title, detail % params, field=refused.field)


def _send(request: Request, caller: ApiCaller, channel: str, body: _Single, address: str) -> JSONResponse:
    caller.check_campaign(body.campaign_id)
    context = context_of(request)
    versions = _versions(request)
    due: list[int] = []
    single = SingleRequest(
        campaign_id=body.campaign_id,
        channel=channel,
        address=address,
        personalisation=body.personalisation,
        reference=body.reference,
        actor=caller.login,
    )

    def create(session: Session) -> tuple[int, Any]:
        try:
            created = create_single_message(
                session, single, versions=versions, settings=context.settings, clock=context.clock
            )
        except Refused as refused:
            raise _problem(refused) from None
        if created.due:
            due.append(created.message_id)
        content: dict[str, Any] = {"body": created.text.body}
        if created.text.subject is not None:
            content["subject"] = created.text.subject
        payload: dict[str, Any] = {
            "id": created.message_id,
            "reference": body.reference,
            "status": created.status.value,
            "campaign_id": body.campaign_id,
            "channel": channel,
            "content": content,
            "uri": f"/api/v1/notifications/{created.message_id}",
        }
        if created.reason is not None:
            payload["reason"] = created.reason
        if created.not_before is not None:
            payload["not_before"] = created.not_before.isoformat()
        return 201, payload

    fingerprint = json.dumps(body.model_dump(), sort_keys=True, ensure_ascii=False).encode()
    with write_turn(context.sessions):
        response = replay_or_run(request, caller, fingerprint, create)
    if due:  # after the commit: the chunker must find the row
        _chunker(request).add(due[0])
    return response


@router.post("/notifications/sms", status_code=201, summary="Send one urgent SMS from an approved campaign")
def send_sms(
    request: Request,
    body: SmsRequest,
    caller: Annotated[ApiCaller, Depends(api_requires("campaigns.send"))],
) -> JSONResponse:
    return _send(request, caller, Channel.SMS, body, body.phone_number)


@router.post(
    "/notifications/email", status_code=201, summary="Send one urgent e-mail from an approved campaign"
)
def send_email(
    request: Request,
    body: EmailRequest,
    caller: Annotated[ApiCaller, Depends(api_requires("campaigns.send"))],
) -> JSONResponse:
    return _send(request, caller, Channel.EMAIL, body, body.email_address)


@router.get("/notifications/{message_id}", summary="A single message's status and delivery events")
def get_notification(
    request: Request,
    message_id: int,
    caller: Annotated[ApiCaller, Depends(api_requires("read"))],
) -> dict[str, Any]:
    not_found = Problem(
        404, "not-found", _("Not found"), _("There is no message %(id)s.") % {"id": message_id}
    )
    with context_of(request).readers() as session:
        found = find_single(session, message_id)
        if found is None or found.message.campaign_id is None:
            raise not_found
        try:
            caller.check_campaign(found.message.campaign_id)
        except Problem:
            raise not_found from None
        message = found.message
        masked = must_mask(caller.user(), unmasked=False)
        address = mask_address(message.address) if masked else message.address
        return {
            "id": message.id,
            "reference": reference_of(message),
            "campaign_id": message.campaign_id,
            "channel": message.channel,
            "status": message.status.value,
            "reason": message.reason,
            ("phone_number" if message.channel == Channel.SMS else "email_address"): address,
            "content": {"body": message.body, "subject": message.subject}
            if message.subject is not None
            else {"body": message.body},
            "created_at": message.created_at.isoformat(),
            "sent_at": message.sent_at.isoformat() if message.sent_at else None,
            "completed_at": message.final_at.isoformat() if message.final_at else None,
            "events": [
                {
                    "type": event.type,
                    "status": event.status_text,
                    "error_code": event.error_code,
                    "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
                    "recorded_at": event.recorded_at.isoformat(),
                }
                for event in found.events
            ],
        }
