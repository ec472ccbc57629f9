"""Campaigns for the web's tests: loaded, submitted, approved and planned through the same services as the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, SendRules, validate_paths
from broadcaster.campaigns.plan import plan_from_settings
from broadcaster.campaigns.store import load_bundle
from broadcaster.context import AppContext
from broadcaster.db.models import Campaign, CampaignVersion, User
from broadcaster.outbox.planner import plan_run
from broadcaster.outbox.queues import RecordingEnqueuer
from tests.broadcaster.conftest import write_campaign

CAMPAIGN = "thong-bao-thu-nghiem"
_HASH_FIELD = re.compile(r'name="content_hash" value="([0-9a-f]{64})"')


def load_campaign(context: AppContext, workdir: Path, **overrides: Any) -> Path:
    """Write the test campaign's files into the working directory and load them as ``bien_tap``."""
    path = write_campaign(workdir, **overrides)
    bundles, problems = validate_paths(
        [path],
        templates_dir=context.templates_dir,
        providers=ProviderInfo.all_from(context.settings),
        rules=SendRules.from_settings(context.settings),
        plan=plan_from_settings(context.settings),
    )
    assert not problems, problems
    with context.sessions.begin() as session:
        load_bundle(session, bundles[0], actor="bien_tap", clock=context.clock)
    return path


def user_named(session: Session, login: str) -> User:
    user = session.scalar(select(User).where(User.login == login))
    assert user is not None
    return user


def approve_campaign(context: AppContext, campaign_id: str = CAMPAIGN) -> None:
    """Submitted by ``bien_tap`` and approved by ``phe_duyet``, as the CLI would."""
    with context.sessions.begin() as session:
        version = workflow.submit(
            session,
            campaign_id=campaign_id,
            actor=user_named(session, "bien_tap"),
            settings=context.settings,
            clock=context.clock,
        )
        workflow.approve(
            session,
            campaign_id=campaign_id,
            actor=user_named(session, "phe_duyet"),
            clock=context.clock,
            content_hash=version.content_hash,
        )


def plan(context: AppContext, run_id: int) -> None:
    """What the plan task does (no workers here: the messages stay queued)."""
    plan_run(
        context.sessions,
        run_id=run_id,
        settings=context.settings,
        clock=context.clock,
        enqueuer=RecordingEnqueuer(),
    )


def shown_hash(page: str) -> str:
    """The content hash a preview page's decision forms carry."""
    found = _HASH_FIELD.search(page)
    assert found, "no decision form on the page"
    return found.group(1)


def versions(context: AppContext, campaign_id: str = CAMPAIGN) -> list[tuple[int, str]]:
    with context.readers() as session:
        rows = session.execute(
            select(CampaignVersion.number, CampaignVersion.status)
            .where(CampaignVersion.campaign_id == campaign_id)
            .order_by(CampaignVersion.number)
        ).all()
    return [(number, status.value) for number, status in rows]


def state(context: AppContext, campaign_id: str = CAMPAIGN) -> str:
    with context.readers() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.state.value
