"""A city-app withdrawal in one transaction: the nonce, the ledger events, their audit, the stopped messages.

The nonce goes in first, in the same transaction as the withdrawal: two copies of one request racing each
other both try to insert it, the primary key lets only one commit, and the loser changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.pending import stop_pending
from broadcaster.web.city_app_request import AppWithdrawal
from broadcaster.web.problems import Problem
from consent import ledger
from consent.models import AppRequestNonce
from consent.policy import ExclusionReason

RECORDED_BY = "city app"


@dataclass(frozen=True)
class Outcome:
    """Per purpose ``withdrawn`` (recorded now) or ``already_withdrawn``; how many queued messages stopped."""

    purposes: dict[str, str]
    stopped_messages: int


def record_app_withdrawal(
    session: Session, request: AppWithdrawal, *, at: datetime, window_seconds: int
) -> Outcome:
    """Store the nonce and withdraw every purpose of ``request``; ``Problem`` 409 (and the caller's rollback)
    when the nonce was used before. Idempotent per purpose: an existing withdrawal is not written again."""
    session.add(AppRequestNonce(nonce=request.nonce, received_at=at))
    try:
        session.flush()
    except IntegrityError:
        raise Problem(
            409,
            "replayed",
            "Nonce already used",
            f"Yêu cầu với nonce “{request.nonce}” đã được nhận trước đó; mỗi yêu cầu cần một nonce mới.",
            field="nonce",
        ) from None
    _prune_nonces(session, at=at, window_seconds=window_seconds)
    outcome = {purpose: _withdraw(session, request, purpose, at=at) for purpose in request.purposes}
    stopped = stop_pending(
        session,
        channel=request.channel,
        address=request.address,
        purposes=request.purposes,
        reason=ExclusionReason.WITHDRAWN,
        now=at,
    )
    return Outcome(purposes=outcome, stopped_messages=stopped)


def _withdraw(session: Session, request: AppWithdrawal, purpose: str, *, at: datetime) -> str:
    already = ledger.latest(session, request.channel, request.address, purpose)
    if already is not None and already.action == ledger.WITHDRAW:
        return "already_withdrawn"
    reference = f"nonce {request.nonce}"
    event = ledger.withdraw(
        session,
        channel=request.channel,
        address=request.address,
        purpose=purpose,
        source="city_app",
        evidence=f"{request.evidence} ({reference})" if request.evidence else reference,
        recorded_by=RECORDED_BY,
        at=at,
    )
    audit.record_consent_event(session, event, nonce=request.nonce)
    return "withdrawn"


def _prune_nonces(session: Session, *, at: datetime, window_seconds: int) -> None:
    # A request is accepted while its timestamp is within ±window of the clock, so a copy of one received at
    # `at` (signed up to a window ahead) stays acceptable until `at` + 2 windows: keep its nonce that long.
    horizon = at - timedelta(seconds=2 * window_seconds)
    session.execute(delete(AppRequestNonce).where(AppRequestNonce.received_at < horizon))
