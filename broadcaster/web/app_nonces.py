"""The nonce of a signed city-app request, used once: stored in the request's own transaction, so two copies of
one request racing each other both try to insert it, the primary key lets only one commit, and the loser
changes nothing (``signed_requests`` explains the replay window)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster.web.problems import Problem
from consent.models import AppRequestNonce


def use_nonce(session: Session, nonce: str, *, at: datetime, window_seconds: int) -> None:
    """Store ``nonce``; ``Problem`` 409 (and the caller's rollback) when it was used before."""
    session.add(AppRequestNonce(nonce=nonce, received_at=at))
    try:
        session.flush()
    except IntegrityError:
        raise Problem(
            409,
            "replayed",
            "Nonce already used",
            f"Yêu cầu với nonce “{nonce}” đã được nhận trước đó; mỗi yêu cầu cần một nonce mới.",
            field="nonce",
        ) from None
    _prune_nonces(session, at=at, window_seconds=window_seconds)


def _prune_nonces(session: Session, *, at: datetime, window_seconds: int) -> None:
    # A request is accepted while its timestamp is within ±window of the clock, so a copy of one received at
    # `at` (signed up to a window ahead) stays acceptable until `at` + 2 windows: keep its nonce that long.
    horizon = at - timedelta(seconds=2 * window_seconds)
    session.execute(delete(AppRequestNonce).where(AppRequestNonce.received_at < horizon))
