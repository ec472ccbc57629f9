"""``Idempotency-Key`` on the POSTs that create something: the same key with the same request gets the
first answer again (nothing is created twice); the same key with another request is refused (422).

``replay_or_run(request, caller, body, create)``: ``create()`` runs only for a new key, and its answer is
stored in the same transaction as what it created, so a crash between the two cannot happen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster.db.models import IdempotencyRecord
from broadcaster.i18n import gettext as _
from broadcaster.web.api.auth import ApiCaller
from broadcaster.web.auth import context_of
from broadcaster.web.problems import Problem

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def request_fingerprint(request: Request, body: bytes) -> str:
    # The scope's path is the whole path under a mount too (building ``request.url`` costs far more).
    path: str = request.scope["path"]
    return hashlib.sha256(request.method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key``, if it sent one (a problem if it is empty or too long)."""
    key = request.headers.get(HEADER)
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
        raise Problem(
            422,
            "invalid-idempotency-key",
            _("Invalid request"),
            _("The Idempotency-Key header must have 1 to 255 characters."),
            field=HEADER,
        )
    return key


def replay_or_run(
    request: Request,
    caller: ApiCaller,
    body: bytes,
    create: Callable[[Session], tuple[int, Any]],
) -> JSONResponse:
    """Run ``create(session)`` → (status, JSON-able body) once per idempotency key, in one transaction."""
    context = context_of(request)
    key = idempotency_key(request)
    fingerprint = request_fingerprint(request, body)
    if key is not None:
        with context.readers() as session:
            stored = session.get(IdempotencyRecord, (caller.key_id, key))
            if stored is not None:
                return _replayed(stored, fingerprint)
    try:
        with context.sessions.begin() as session:
            status, payload = create(session)
            if key is not None:
                session.add(
                    IdempotencyRecord(
                        api_key_id=caller.key_id,
                        key=key,
                        request_hash=fingerprint,
                        status_code=status,
                        body=json.dumps(payload, ensure_ascii=False, default=str),
                        created_at=context.clock.now(),
                    )
                )
    except IntegrityError:
        # The same key raced in from a concurrent request and won: answer as it did, create nothing.
        if key is None:
            raise
        with context.readers() as session:
            stored = session.get(IdempotencyRecord, (caller.key_id, key))
        if stored is None:
            raise
        return _replayed(stored, fingerprint)
    return JSONResponse(payload, status_code=status)


def _replayed(stored: IdempotencyRecord, fingerprint: str) -> JSONResponse:
    return replayed(stored.request_hash, stored.status_code, stored.body, fingerprint)


def replayed(request_hash: str, status_code: int, body: str, fingerprint: str) -> JSONResponse:
    """The stored answer again, if the stored request is this one (else a problem: the key was reused)."""
    if request_hash != fingerprint:
        raise Problem(
            422,
            "idempotency-key-reused",
            _("Invalid request"),
            _("This Idempotency-Key was used for a different request."),
            field=HEADER,
        )
    return JSONResponse(json.loads(body), status_code=status_code, headers={"Idempotent-Replayed": "true"})
