"""A campaign without a schedule section goes out once: it is completed with its run, and sending it again
takes ``again`` (audited, with how many people already received it)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from broadcaster.db.models import AuditEntry, Campaign, CampaignRun
from broadcaster.errors import StateError
from broadcaster.vocabulary import CampaignState, RunStatus
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import citizens

PEOPLE = 5
EMAIL_ONLY = {"channels": {"email": {"template": "email/thu-nghiem", "provider": "mail"}}}


def campaign_state(pipeline: Pipeline, campaign_id: str) -> CampaignState:
    with pipeline.context.readers() as session:
        campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    return campaign.state


def audit(pipeline: Pipeline, action: str) -> list[AuditEntry]:
    with pipeline.context.readers() as session:
        return list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )


def test_a_one_off_campaign_completes_and_is_sent_again_only_when_asked(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(PEOPLE))
    campaign_id = pipeline.approved_campaign(**EMAIL_ONLY)
    first = pipeline.send(campaign_id)
    pipeline.tick()

    assert pipeline.counts(first) == {("email", "sent"): PEOPLE}
    assert campaign_state(pipeline, campaign_id) == CampaignState.COMPLETED
    [completed] = audit(pipeline, "campaign.completed")
    assert (completed.actor, completed.details) == (
        "engine",
        {"run_id": first, "version": 1, "state": {"from": "approved", "to": "completed"}},
    )

    pipeline.advance(hours=1)
    with pytest.raises(StateError) as refused:
        pipeline.start_run(campaign_id)
    message = str(refused.value)
    assert f"{PEOPLE} people received it" in message
    assert f"broadcaster send {campaign_id} --again" in message
    assert len(audit(pipeline, "campaign.send")) == 1  # the refusal changed nothing

    again = pipeline.start_run(campaign_id, again=True)
    assert campaign_state(pipeline, campaign_id) == CampaignState.APPROVED  # can be paused while it runs
    entry = audit(pipeline, "campaign.send")[-1]
    assert (entry.actor, entry.details["again"], entry.details["already_received"]) == (
        pipeline.editor.login,
        True,
        PEOPLE,
    )
    pipeline.plan(again)
    pipeline.drain()
    pipeline.tick()
    assert pipeline.counts(again) == {("email", "sent"): PEOPLE}
    assert campaign_state(pipeline, campaign_id) == CampaignState.COMPLETED
    assert pipeline.smtp.wait_for_count(2 * PEOPLE)
    assert len(pipeline.smtp.received) == 2 * PEOPLE


def test_a_one_off_campaign_whose_run_is_going_out_is_not_sent_twice(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(PEOPLE))
    campaign_id = pipeline.approved_campaign(**EMAIL_ONLY)
    running = pipeline.start_run(campaign_id)
    pipeline.plan(running)
    pipeline.advance(minutes=1)

    with pytest.raises(StateError, match="--again"):
        pipeline.start_run(campaign_id)


def test_a_scheduled_campaign_is_not_completed_by_a_manual_run(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(PEOPLE))
    weekly = {"start": "2025-06-09 08:00", "rrule": "FREQ=WEEKLY;BYDAY=MO"}
    campaign_id = pipeline.approved_campaign(schedule=weekly, **EMAIL_ONLY)
    run_id = pipeline.send(campaign_id)
    pipeline.tick()

    with pipeline.context.readers() as session:
        run = session.get(CampaignRun, run_id)
        assert run is not None
        assert run.status == RunStatus.COMPLETED
    assert campaign_state(pipeline, campaign_id) == CampaignState.APPROVED
    pipeline.advance(minutes=1)
    assert pipeline.start_run(campaign_id) > run_id  # recurring campaigns are sent as often as asked
