"""A city-app withdrawal in one transaction: the nonce, the ledger events, their audit, the stopped messages.

The nonce goes in first, in the same transaction as the withdrawal (``app_nonces``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.pending import stop_pending
from broadcaster.web.app_nonces import use_nonce
from broadcaster.web.city_app_request import AppWithdrawal
from consent import ledger
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
    use_nonce(session, request.nonce, at=at, window_seconds=window_seconds)
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
