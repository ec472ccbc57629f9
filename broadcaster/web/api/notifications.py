"""Single urgent messages, like GOV.UK Notify's ``POST /v2/notifications/sms|email``: one message to one
address from an approved campaign (``broadcaster.outbox.single``), and its status and delivery events.

A key sees a message created through the API of any campaign it may use (not only its own: a key is
rotated, the messages stay the system's); messages of campaign runs are not visible here (404).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster.context import AppContext
from broadcaster.db.models import IdempotencyRecord
from broadcaster.db.write_turn import write_turn
from broadcaster.i18n import gettext as _
from broadcaster.masking import mask_address, must_mask
from broadcaster.outbox.queues import Enqueuer
from broadcaster.outbox.single import (
    Created,
    Prepared,
    Refused,
    SingleRequest,
    UrgentChunker,
    VersionCache,
    find_single,
    insert_singles,
    judge_singles,
    prepare_single,
    reference_of,
)
from broadcaster.web.api.auth import ApiCaller, api_requires
from broadcaster.web.api.errors import PROBLEMS
from broadcaster.web.api.idempotency import idempotency_key, replayed, request_fingerprint
from broadcaster.web.auth import context_of
from broadcaster.web.group_commit import LATER, GroupCommit
from broadcaster.web.problems import Problem
from channels.base import Channel

router = APIRouter(tags=["notifications"], responses=PROBLEMS)
_RECORDS = cast(Table, IdempotencyRecord.__table__)
_INSERT_RECORD = insert(_RECORDS)
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
    sets ``app.state.enqueuer`` (and ``chunk_in_background = False`` to chunk before answering)."""
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


@dataclass(frozen=True)
class _Submission:
    key_id: int
    idempotency_key: str | None
    fingerprint: str
    prepared: Prepared


@dataclass(frozen=True)
class _Stored:
    """The answer stored under the submission's idempotency key by an earlier request."""

    request_hash: str
    status_code: int
    body: str


def _writer(request: Request) -> GroupCommit[_Submission, object]:
    """The process's group commit of single messages (made on first use)."""
    state = request.app.state
    versions, chunker = _versions(request), _chunker(request)
    with _setup:
        if getattr(state, "single_writer", None) is None:
            state.single_writer = GroupCommit(_batch_writer(context_of(request), versions, chunker))
    writer: GroupCommit[_Submission, object] = state.single_writer
    return writer


def _batch_writer(
    context: AppContext, versions: VersionCache, chunker: UrgentChunker
) -> Callable[[Sequence[_Submission]], list[object]]:
    def write(batch: Sequence[_Submission]) -> list[object]:
        """Reads first, from a snapshot: the answers already stored under the batch's keys and the
        judgement of the new messages. Then, in a short turn at the database's one writer, the messages
        with their audit entries and stored answers; after the commit, the ids of those due now go to the
        chunker (which must find the rows). A key stored meanwhile by another worker process fails the
        insert (IntegrityError): the batch is then written item by item and that request answered from
        what the other stored."""
        answers: list[object] = [LATER] * len(batch)
        fresh: list[int] = []
        with context.readers() as session:
            stored = _stored_answers(session, batch)
            held: set[tuple[int, str]] = set()
            for n, submission in enumerate(batch):
                if submission.idempotency_key is None:
                    fresh.append(n)
                    continue
                ident = (submission.key_id, submission.idempotency_key)
                if ident in stored:
                    answers[n] = stored[ident]
                elif ident not in held:  # a second request with the same key waits for the next batch
                    held.add(ident)
                    fresh.append(n)
            judged = judge_singles(
                session,
                [batch[n].prepared for n in fresh],
                versions=versions,
                settings=context.settings,
                clock=context.clock,
            )
        due: list[int] = []
        with write_turn(context.sessions), context.sessions.begin() as session:
            written = insert_singles(session, judged)
            records: list[dict[str, Any]] = []
            now = context.clock.now()
            for n, result in zip(fresh, written, strict=True):
                if isinstance(result, Refused):
                    answers[n] = result
                    continue
                if result.due:
                    due.append(result.message_id)
                payload = _payload(batch[n].prepared, result)
                answers[n] = payload
                if batch[n].idempotency_key is not None:
                    records.append(
                        {
                            "api_key_id": batch[n].key_id,
                            "key": batch[n].idempotency_key,
                            "request_hash": batch[n].fingerprint,
                            "status_code": 201,
                            "body": json.dumps(payload, ensure_ascii=False, default=str),
                            "created_at": now,
                        }
                    )
            if records:
                session.connection().execute(_INSERT_RECORD, records)
        chunker.add(due)
        return answers

    return write


def _stored_answers(session: Session, batch: Sequence[_Submission]) -> dict[tuple[int, str], _Stored]:
    keys: dict[int, set[str]] = defaultdict(set)
    for submission in batch:
        if submission.idempotency_key is not None:
            keys[submission.key_id].add(submission.idempotency_key)
    found: dict[tuple[int, str], _Stored] = {}
    for key_id, names in keys.items():
        table = _RECORDS.c
        for key, request_hash, status_code, body in session.connection().execute(
            select(table.key, table.request_hash, table.status_code, table.body).where(
                table.api_key_id == key_id, table.key.in_(sorted(names))
            )
        ):
            found[(key_id, key)] = _Stored(request_hash, status_code, body)
    return found


def _payload(prepared: Prepared, created: Created) -> dict[str, Any]:
    request = prepared.request
    content: dict[str, Any] = {"body": created.text.body}
    if created.text.subject is not None:
        content["subject"] = created.text.subject
    payload: dict[str, Any] = {
        "id": created.message_id,
        "reference": request.reference,
        "status": created.status.value,
        "campaign_id": request.campaign_id,
        "channel": request.channel,
        "content": content,
        "uri": f"/api/v1/notifications/{created.message_id}",
    }
    if created.reason is not None:
        payload["reason"] = created.reason
    if created.not_before is not None:
        payload["not_before"] = created.not_before.isoformat()
    return payload


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
            answer = await _writer(request).submit(_Submission(caller.key_id, key, fingerprint, prepared))
        except IntegrityError:  # the same key, at the same moment, in another worker process: it won
            stored = _stored_for(context, caller, key) if key is not None else None
            if stored is None:
                raise
            answer = stored
    if isinstance(answer, Refused):
        raise _problem(answer)
    if isinstance(answer, _Stored):
        return replayed(answer.request_hash, answer.status_code, answer.body, fingerprint)
    return JSONResponse(answer, status_code=201)


def _stored_for(context: AppContext, caller: ApiCaller, key: str) -> _Stored | None:
    with context.readers() as session:
        record = session.get(IdempotencyRecord, (caller.key_id, key))
        return None if record is None else _Stored(record.request_hash, record.status_code, record.body)


@router.post("/notifications/sms", status_code=201, summary="Send one urgent SMS from an approved campaign")
async def send_sms(
    request: Request,
    body: SmsRequest,
    caller: Annotated[ApiCaller, Depends(api_requires("campaigns.send"))],
) -> JSONResponse:
    return await _send(request, caller, Channel.SMS, body, body.phone_number)


@router.post(
    "/notifications/email", status_code=201, summary="Send one urgent e-mail from an approved campaign"
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
