"""The single-message API's writes, a batch at a time: what ``web.group_commit`` (in a web worker) or the
writer process (``web.single_writer``, one for all the workers of ``serve --workers N`` on SQLite) runs.

No request or app objects here: the writer process imports this module and the engine's, nothing of the UI.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from broadcaster.context import AppContext
from broadcaster.db.models import IdempotencyRecord
from broadcaster.db.write_turn import write_turn
from broadcaster.outbox.queues import Enqueuer
from broadcaster.outbox.single import (
    Created,
    Prepared,
    Refused,
    UrgentChunker,
    VersionCache,
    insert_singles,
    judge_singles,
)
from broadcaster.web.group_commit import LATER

_RECORDS = cast(Table, IdempotencyRecord.__table__)
_INSERT_RECORD = insert(_RECORDS)


@dataclass(frozen=True)
class Submission:
    """One request's message, checked and rendered by the web worker, with what its answer is stored under."""

    key_id: int
    idempotency_key: str | None
    fingerprint: str
    prepared: Prepared


@dataclass(frozen=True)
class Stored:
    """The answer stored under the submission's idempotency key by an earlier request."""

    request_hash: str
    status_code: int
    body: str


# What a batch answers per submission: the message's payload (a dict), a ``Stored`` answer, a ``Refused``,
# ``LATER`` (write it with the next batch) or an exception for that request only.
BatchWrite = Callable[[Sequence[Submission]], list[object]]


def urgent_chunker(
    context: AppContext, enqueuer: Enqueuer | None = None, *, background: bool = True
) -> UrgentChunker:
    """The chunker of the process that writes single messages, enqueuing on the engine's queues (Celery on
    the configured broker) unless a test gives its own ``enqueuer``."""
    if enqueuer is None:
        from broadcaster.tasks import CeleryEnqueuer, configure  # Celery's imports are heavy

        configure(context.settings)
        enqueuer = CeleryEnqueuer()
    sink = enqueuer

    def enqueue(chunk_id: int, queue: str) -> None:
        sink.dispatch_chunk(chunk_id, queue=queue)

    return UrgentChunker(context.sessions, context.clock, enqueue, background=background)


def batch_writer(context: AppContext, versions: VersionCache, chunker: UrgentChunker) -> BatchWrite:
    def write(batch: Sequence[Submission]) -> list[object]:
        """Reads first, from a snapshot: the answers already stored under the batch's keys and the
        judgement of the new messages. Then, in a short turn at the database's one writer, the messages
        with their audit entries and stored answers; after the commit, the ids of those due now go to the
        chunker (which must find the rows). A key stored meanwhile by another process fails the insert
        (IntegrityError): the batch is then written item by item and that request answered from what the
        other stored."""
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
                payload = payload_of(batch[n].prepared, result)
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


def _stored_answers(session: Session, batch: Sequence[Submission]) -> dict[tuple[int, str], Stored]:
    keys: dict[int, set[str]] = defaultdict(set)
    for submission in batch:
        if submission.idempotency_key is not None:
            keys[submission.key_id].add(submission.idempotency_key)
    found: dict[tuple[int, str], Stored] = {}
    for key_id, names in keys.items():
        table = _RECORDS.c
        for key, request_hash, status_code, body in session.connection().execute(
            select(table.key, table.request_hash, table.status_code, table.body).where(
                table.api_key_id == key_id, table.key.in_(sorted(names))
            )
        ):
            found[(key_id, key)] = Stored(request_hash, status_code, body)
    return found


def payload_of(prepared: Prepared, created: Created) -> dict[str, Any]:
    """The API's answer for a message written: what ``GET /notifications/{id}`` shows of it, in short."""
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
