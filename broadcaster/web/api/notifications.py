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
from sqlalchemy.exc import IntegrityError

from broadcaster.context import AppContext
from broadcaster.db.models import IdempotencyRecord
from broadcaster.i18n import gettext as _
from broadcaster.masking import mask_address, must_mask
from broadcaster.outbox.single import (
    Refused,
    SingleRequest,
    UrgentChunker,
    VersionCache,
    find_single,
    prepare_single,
    reference_of,
)
from broadcaster.web.api.auth import ApiCaller, api_requires
from broadcaster.web.api.errors import PROBLEMS, documented
from broadcaster.web.api.idempotency import idempotency_key, replayed, request_fingerprint
from broadcaster.web.auth import context_of
from broadcaster.web.group_commit import GroupCommit
from broadcaster.web.problems import Problem
from broadcaster.web.single_batches import Stored, Submission, batch_writer, urgent_chunker
from broadcaster.web.single_writer import RemoteWrite, WriterUnavailable
from channels.base import Channel

router = APIRouter(tags=["notifications"], responses=PROBLEMS)
# The writer process of ``serve`` may be restarting (``web.single_writer``).
_WRITES: dict[int | str, dict[str, Any]] = {
    503: documented("The message may or may not have been written; send it again (same Idempotency-Key)")
}
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
    """The process's chunker (when it writes its own messages). A test sets ``app.state.enqueuer`` (and
    ``chunk_in_background = False`` to chunk before answering)."""
    state = request.app.state
    with _setup:
        if getattr(state, "chunker", None) is None:
            state.chunker = urgent_chunker(
                context_of(request),
                getattr(state, "enqueuer", None),
                background=getattr(state, "chunk_in_background", True),
            )
    chunker: UrgentChunker = state.chunker
    return chunker


def _writer(request: Request) -> GroupCommit[Submission, object]:
    """The process's group commit of single messages (made on first use): to the writer process that
    ``serve`` started for all its workers (``web.single_writer``), or written by a thread of this one."""
    state = request.app.state
    if getattr(state, "single_writer", None) is None:
        write = RemoteWrite.from_environment() or batch_writer(
            context_of(request), _versions(request), _chunker(request)
        )
        with _setup:
            if getattr(state, "single_writer", None) is None:
                state.single_writer = GroupCommit(write)
    writer: GroupCommit[Submission, object] = state.single_writer
    return writer


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


async def _send(
    request: Request, caller: ApiCaller, channel: str, body: _Single, address: str
) -> JSONResponse:
    """Check and render on the event loop, then wait for the group commit to write the message."""
    caller.check_campaign(body.campaign_id)
    context = context_of(request)
    key = idempotency_key(request)
    canonical = json.dumps(body.model_dump(), sort_keys=True, ensure_ascii=False).encode()
    fingerprint = request_fingerprint(request, canonical)
    single = SingleRequest(
        campaign_id=body.campaign_id,
        channel=channel,
        address=address,
        personalisation=body.personalisation,
        reference=body.reference,
        actor=caller.login,
    )
    try:
        version, content_hash = _versions(request).current(context.sessions, body.campaign_id)
        prepared = prepare_single(single, version, content_hash)
    except Refused as refused:
        stored = _stored_for(context, caller, key) if key is not None else None
        if stored is None:  # an answer stored under the key is given again, even if refused now
            raise _problem(refused) from None
        answer: object = stored
    else:
        try:
            answer = await _writer(request).submit(Submission(caller.key_id, key, fingerprint, prepared))
        except IntegrityError:  # the same key, at the same moment, in another process: it won
            stored = _stored_for(context, caller, key) if key is not None else None
            if stored is None:
                raise
            answer = stored
        except WriterUnavailable:
            raise Problem(
                503,
                "writer-unavailable",
                _("Service unavailable"),
                _(
                    "The message may or may not have been written: send the request again with the same "
                    "Idempotency-Key."
                ),
                retry_after=1,
            ) from None
    if isinstance(answer, Refused):
        raise _problem(answer)
    if isinstance(answer, Stored):
        return replayed(answer.request_hash, answer.status_code, answer.body, fingerprint)
    return JSONResponse(answer, status_code=201)


def _stored_for(context: AppContext, caller: ApiCaller, key: str) -> Stored | None:
    with context.readers() as session:
        record = session.get(IdempotencyRecord, (caller.key_id, key))
        return None if record is None else Stored(record.request_hash, record.status_code, record.body)


@router.post(
    "/notifications/sms",
    status_code=201,
    summary="Send one urgent SMS from an approved campaign",
    responses=_WRITES,
)
async def send_sms(
    request: Request,
    body: SmsRequest,
    caller: Annotated[ApiCaller, Depends(api_requires("campaigns.send"))],
) -> JSONResponse:
    return await _send(request, caller, Channel.SMS, body, body.phone_number)


@router.post(
    "/notifications/email",
    status_code=201,
    summary="Send one urgent e-mail from an approved campaign",
    responses=_WRITES,
)
async def send_email(
    request: Request,
    body: EmailRequest,
    caller: Annotated[ApiCaller, Depends(api_requires("campaigns.send"))],
) -> JSONResponse:
    return await _send(request, caller, Channel.EMAIL, body, body.email_address)


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
