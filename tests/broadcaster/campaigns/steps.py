"""Steps the campaign workflow tests share: load a file, submit, approve, and read back what happened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, SendRules, load_campaign_file
from broadcaster.campaigns.store import LoadOutcome, get_version, load_bundle
from broadcaster.context import AppContext
from broadcaster.db.models import (
    AuditEntry,
    Campaign,
    CampaignVersion,
    User,
)
from broadcaster.settings import Settings
from broadcaster.status import campaign_status
from tests.broadcaster.conftest import database_dump

CAMPAIGN = "thong-bao-thu-nghiem"
WEEKLY = {"start": "2025-06-09 08:00", "rrule": "FREQ=WEEKLY;BYDAY=MO"}


def load(context: AppContext, path: Path, *, actor: str = "bien_tap") -> LoadOutcome:
    bundle, problems = load_campaign_file(
        path,
        templates_dir=context.templates_dir,
        providers=ProviderInfo.all_from(context.settings),
        rules=SendRules.from_settings(context.settings),
    )
    assert problems == [], problems
    assert bundle is not None
    with context.sessions.begin() as session:
        return load_bundle(session, bundle, actor=actor, clock=context.clock)


def run(context: AppContext, action: Callable[[Session], Any]) -> Any:
    with context.sessions.begin() as session:
        return action(session)


def refused(context: AppContext, error: type[Exception], match: str, action: Callable[[Session], Any]) -> str:
    """Run ``action`` in a transaction, expect ``error``, and prove the database did not change."""
    before = database_dump(context.engine)
    with pytest.raises(error, match=match) as caught, context.sessions.begin() as session:
        action(session)
    assert database_dump(context.engine) == before
    return str(caught.value)


def submit(
    context: AppContext, user: User, *, settings: Settings | None = None, reason: str | None = None
) -> Any:
    return run(
        context,
        lambda s: workflow.submit(
            s,
            campaign_id=CAMPAIGN,
            actor=user,
            settings=settings or context.settings,
            clock=context.clock,
            reason=reason,
        ),
    )


def reviewed_hash(session: Session, number: int | None = None) -> str:
    """What an approver copies from ``preview``: a prefix of the version's content hash."""
    return get_version(session, CAMPAIGN, number).content_hash[:12]


def approve(context: AppContext, user: User, **kwargs: Any) -> Callable[[Session], Any]:
    def action(s: Session) -> Any:
        kwargs.setdefault("content_hash", reviewed_hash(s, kwargs.get("version_number")))
        return workflow.approve(s, campaign_id=CAMPAIGN, actor=user, clock=context.clock, **kwargs)

    return action


def versions(context: AppContext) -> list[tuple[int, str]]:
    with context.sessions() as session:
        return [
            (v.number, v.status.value)
            for v in session.scalars(select(CampaignVersion).order_by(CampaignVersion.number))
        ]


def campaign(context: AppContext) -> Campaign:
    with context.sessions() as session:
        found = session.get(Campaign, CAMPAIGN)
    assert found is not None
    return found


def audit_trail(context: AppContext) -> list[AuditEntry]:
    with context.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.subject_type == "campaign").order_by(AuditEntry.id)
            )
        )


def approved_campaign(context: AppContext, people: dict[str, User], path: Path) -> None:
    load(context, path)
    submit(context, people["editor"])
    run(context, approve(context, people["approver"]))


def campaign_status_of(context: AppContext) -> dict[str, Any]:
    with context.sessions() as session:
        return campaign_status(session, CAMPAIGN)
