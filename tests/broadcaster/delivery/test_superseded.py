"""A newer version's approval stops what the older versions still had waiting: nobody gets both the wrong and
the corrected message. The runs of older versions are cancelled at approval; the dispatcher checks the run
before each window and the planner before each page, so a run cancelled while it is sending or being planned
stops there. ``keep_pending`` lets them finish instead."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Row, select

import broadcaster.outbox.planner as planner
from broadcaster.campaigns import audience, workflow
from broadcaster.campaigns.store import latest_version
from broadcaster.db.models import AuditEntry, CampaignRun
from broadcaster.vocabulary import MessageStatus, RunStatus
from channels.base import OutboundMessage, SendResult
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import citizens
from tests.peers.polling import wait_until

PEOPLE = 6
WRONG, CORRECTED = "01/07/2025", "15/07/2025"
# START is Monday 08:00 in Da Nang: the window opens at 14:00, so planned rows wait with ``not_before``.
AFTERNOON = {"start": "2025-06-02 14:00", "window": {"start": "14:00", "end": "17:00"}}


def version_with(date: str, **overrides: Any) -> dict[str, Any]:
    return {"variables": {"ngay": date, "thu_tuc": "cấp đổi giấy phép lái xe"}, **overrides}


def submit_new_version(pipeline: Pipeline, **overrides: Any) -> str:
    """Load and submit a changed file of the same campaign; returns the hash prefix the approver reviews."""
    pipeline.advance(minutes=30)  # the editor noticed the mistake a little later
    campaign_id = pipeline.load_campaign(pipeline.write_campaign(**overrides))
    with pipeline.context.sessions.begin() as session:
        workflow.submit(
            session,
            campaign_id=campaign_id,
            actor=pipeline.editor,
            settings=pipeline.context.settings,
            clock=pipeline.clock,
        )
        return latest_version(session, campaign_id).content_hash[:12]


def approve_latest(
    pipeline: Pipeline, campaign_id: str, reviewed: str, *, keep_pending: bool = False
) -> None:
    with pipeline.context.sessions.begin() as session:
        workflow.approve(
            session,
            campaign_id=campaign_id,
            actor=pipeline.approver,
            clock=pipeline.clock,
            content_hash=reviewed,
            keep_pending=keep_pending,
        )


def run_of(pipeline: Pipeline, run_id: int) -> CampaignRun:
    with pipeline.context.readers() as session:
        run = session.get(CampaignRun, run_id)
    assert run is not None
    return run


def audit_actions(pipeline: Pipeline, action: str) -> list[AuditEntry]:
    with pipeline.context.readers() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def subjects(pipeline: Pipeline) -> list[str]:
    return [str(mail.message()["subject"]) for mail in pipeline.smtp.received]


def open_window_and_send(pipeline: Pipeline) -> None:
    pipeline.advance(hours=6)  # 14:00 in Da Nang
    pipeline.tick()
    pipeline.drain()


def test_the_corrected_version_stops_the_wrong_one_waiting_for_its_window(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(PEOPLE))
    campaign_id = pipeline.approved_campaign(**version_with(WRONG, schedule=AFTERNOON))
    wrong_run = pipeline.send(campaign_id)
    waiting = pipeline.messages(wrong_run)
    assert len(waiting) == 2 * PEOPLE
    assert all(m.status == MessageStatus.QUEUED and m.not_before is not None for m in waiting)

    approve_latest(
        pipeline, campaign_id, submit_new_version(pipeline, **version_with(CORRECTED, schedule=AFTERNOON))
    )

    assert pipeline.counts(wrong_run) == {("sms", "cancelled"): PEOPLE, ("email", "cancelled"): PEOPLE}
    assert {m.reason for m in pipeline.messages(wrong_run)} == {"superseded by version 2"}
    run = run_of(pipeline, wrong_run)
    assert run.status == RunStatus.CANCELLED
    assert run.ended_reason == f"superseded by version 2 (approved by {pipeline.approver.login})"
    [entry] = audit_actions(pipeline, "campaign.older_runs_stopped")
    assert entry.actor == pipeline.approver.login
    assert entry.details == {"version": 2, "runs": [wrong_run], "cancelled_messages": 2 * PEOPLE}

    corrected_run = pipeline.send(campaign_id)
    open_window_and_send(pipeline)

    assert pipeline.counts(corrected_run)[("email", "sent")] == PEOPLE
    assert pipeline.smtp.wait_for_count(PEOPLE)
    assert pipeline.smsc.wait_until(lambda smsc: len(smsc.accepted) >= PEOPLE)
    pipeline.wait_for_statuses(corrected_run, {("sms", "delivered"): PEOPLE})
    assert len(pipeline.smtp.received) == PEOPLE
    assert len(pipeline.smsc.accepted) == PEOPLE
    assert all(CORRECTED in subject for subject in subjects(pipeline))
    assert all(CORRECTED in sms.text and WRONG not in sms.text for sms in pipeline.smsc.reassembled())
    assert pipeline.counts(wrong_run) == {("sms", "cancelled"): PEOPLE, ("email", "cancelled"): PEOPLE}


def test_keep_pending_lets_the_older_run_finish(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(PEOPLE))
    email_only = {"channels": {"email": {"template": "email/thu-nghiem", "provider": "mail"}}}
    campaign_id = pipeline.approved_campaign(**version_with(WRONG, schedule=AFTERNOON, **email_only))
    first_run = pipeline.send(campaign_id)

    reviewed = submit_new_version(pipeline, **version_with(CORRECTED, schedule=AFTERNOON, **email_only))
    approve_latest(pipeline, campaign_id, reviewed, keep_pending=True)

    assert pipeline.counts(first_run) == {("email", "queued"): PEOPLE}
    [entry] = audit_actions(pipeline, "campaign.older_runs_kept")
    assert entry.details == {"version": 2, "runs": [first_run], "pending_messages": PEOPLE}
    assert audit_actions(pipeline, "campaign.older_runs_stopped") == []
    second_run = pipeline.send(campaign_id)
    open_window_and_send(pipeline)

    assert pipeline.counts(first_run) == {("email", "sent"): PEOPLE}
    assert pipeline.counts(second_run) == {("email", "sent"): PEOPLE}
    assert pipeline.smtp.wait_for_count(2 * PEOPLE)
    sent = subjects(pipeline)
    assert sum(WRONG in s for s in sent) == PEOPLE
    assert sum(CORRECTED in s for s in sent) == PEOPLE


def test_the_dispatcher_stops_a_run_cancelled_while_its_chunk_is_sending(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = 120  # e-mail windows are 50: three windows in one chunk
    pipeline.add_contacts(citizens(people))
    email_only = {"channels": {"email": {"template": "email/thu-nghiem", "provider": "mail"}}}
    campaign_id = pipeline.approved_campaign(**version_with(WRONG, **email_only))
    reviewed = submit_new_version(pipeline, **version_with(CORRECTED, **email_only))
    pipeline.start_engine()
    assert pipeline.adapters is not None
    adapter = pipeline.adapters.get("mail")
    original = adapter.send
    calls = 0

    def send(messages: Sequence[OutboundMessage]) -> list[SendResult]:
        nonlocal calls
        calls += 1
        results = original(messages)
        if calls == 1:  # the approver approves version 2 while version 1's first window is on the wire
            approve_latest(pipeline, campaign_id, reviewed)
        return results

    monkeypatch.setattr(adapter, "send", send)
    wrong_run = pipeline.start_run(campaign_id)
    pipeline.plan(wrong_run)

    summaries = pipeline.drain()

    assert [(s.windows, s.sent, s.stopped) for s in summaries] == [(1, 50, f"run {wrong_run} is cancelled")]
    assert pipeline.counts(wrong_run) == {("email", "sent"): 50, ("email", "cancelled"): people - 50}
    assert run_of(pipeline, wrong_run).status == RunStatus.CANCELLED
    pipeline.advance(hours=1)
    assert pipeline.tick().chunks == 0
    assert pipeline.smtp.wait_for_count(50)
    assert len(pipeline.smtp.received) == 50


def test_the_planner_stops_a_run_cancelled_while_it_is_planned(
    make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline: Pipeline = make_pipeline(delivery={"plan_page_size": 10})
    pipeline.add_contacts(citizens(30))
    email_only = {"channels": {"email": {"template": "email/thu-nghiem", "provider": "mail"}}}
    campaign_id = pipeline.approved_campaign(**version_with(WRONG, **email_only))
    reviewed = submit_new_version(pipeline, **version_with(CORRECTED, **email_only))
    original = audience.iter_audience_rows  # the function the planner imported

    def approved_after_the_first_page(*args: Any, **kwargs: Any) -> Iterator[list[Row[Any]]]:
        for number, page in enumerate(original(*args, **kwargs)):
            if number == 1:  # once the first page is committed, version 2 is approved before the second
                wait_until(lambda: run_of(pipeline, wrong_run).plan_checkpoint == 10 or None, what="page 1")
                approve_latest(pipeline, campaign_id, reviewed)
            yield page

    monkeypatch.setattr(planner, "iter_audience_rows", approved_after_the_first_page)
    wrong_run = pipeline.start_run(campaign_id)

    assert pipeline.plan(wrong_run) == 0

    assert pipeline.counts(wrong_run) == {("email", "cancelled"): 10}  # the first page, never sent
    run = run_of(pipeline, wrong_run)
    assert (run.status, run.plan_checkpoint) == (RunStatus.CANCELLED, 10)
    assert pipeline.enqueuer.chunks == []
    pipeline.tick()
    assert pipeline.drain() == []
    assert pipeline.smtp.received == []
