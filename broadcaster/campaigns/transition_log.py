"""The audit entry every campaign transition writes (``campaign.<action>``, on the campaign, by a user)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.db.models import Campaign, User

__all__ = ["log_transition"]


def log_transition(
    session: Session,
    *,
    actor: User,
    action: str,
    campaign: Campaign,
    at: datetime,
    reason: str | None = None,
    **details: object,
) -> None:
    audit.record(
        session,
        actor=actor.login,
        action=f"campaign.{action}",
        subject_type="campaign",
        subject_id=campaign.id,
        at=at,
        reason=reason,
        details=details,
    )
