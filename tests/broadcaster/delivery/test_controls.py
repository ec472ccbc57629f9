"""Pause, resume and cancel take effect between windows: the dispatcher checks the campaign's state before
each window, so a chunk stops after the window on the wire, and the rest waits (pause) or is dropped (cancel).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from sqlalchemy import select

from broadcaster.db.models import CampaignRun
from broadcaster.vocabulary import RunStatus
from channels.base import OutboundMessage, SendResult
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import citizens

PEOPLE = 120  # e-mail windows are 50: three windows in one chunk of 200


def email_campaign(pipeline: Pipeline) -> str:
    return pipeline.approved_campaign(
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}}
    )


def after_first_window(
    pipeline: Pipeline, action: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run ``action`` (an operator's command) while the first window is on the wire."""
    assert pipeline.dispatcher is None
    pipeline.start_engine()
    assert pipeline.adapters is not None
    adapter = pipeline.adapters.get("mail")
    original = adapter.send
    calls = 0

    def send(messages: Sequence[OutboundMessage]) -> list[SendResult]:
        nonlocal calls
        calls += 1
        results = original(messages)
        if calls == 1:
            action()
        return results

    monkeypatch.setattr(adapter, "send", send)


def run_status(pipeline: Pipeline, run_id: int) -> RunStatus:
    with pipeline.context.readers() as session:
        status = session.scalar(select(CampaignRun.status).where(CampaignRun.id == run_id))
    assert status is not None
    return status


def test_a_paused_campaign_stops_after_the_window_and_resumes_later(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.add_contacts(citizens(PEOPLE))
    campaign_id = email_campaign(pipeline)
    after_first_window(pipeline, lambda: pipeline.pause(campaign_id), monkeypatch)
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)

    summaries = pipeline.drain()

    assert len(summaries) == 1
    assert summaries[0].windows == 1
    assert summaries[0].sent == 50
    assert summaries[0].stopped == f"campaign {campaign_id} is paused"
    assert pipeline.counts(run_id) == {("email", "sent"): 50, ("email", "queued"): 70}
    assert run_status(pipeline, run_id) == RunStatus.SENDING

    pipeline.advance(hours=2)
    assert pipeline.tick().chunks == 0  # paused: nothing is cut for it
    pipeline.resume(campaign_id)
    assert pipeline.tick().chunks == 1
    pipeline.drain()
    pipeline.tick()

    assert pipeline.counts(run_id) == {("email", "sent"): PEOPLE}
    assert run_status(pipeline, run_id) == RunStatus.COMPLETED
    assert pipeline.smtp.wait_for_count(PEOPLE)
    recipients = [r for mail in pipeline.smtp.received for r in mail.rcpt_tos]
    assert sorted(recipients) == sorted(p["email"] for p in citizens(PEOPLE))  # each once


def test_cancel_between_windows_cancels_what_is_still_queued(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.add_contacts(citizens(PEOPLE))
    campaign_id = email_campaign(pipeline)
    after_first_window(pipeline, lambda: pipeline.cancel(campaign_id), monkeypatch)
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)

    summaries = pipeline.drain()

    assert summaries[0].windows == 1
    assert summaries[0].stopped == f"campaign {campaign_id} is cancelled"
    assert pipeline.counts(run_id) == {("email", "sent"): 50, ("email", "cancelled"): 70}
    assert run_status(pipeline, run_id) == RunStatus.CANCELLED
    pipeline.advance(hours=2)
    assert pipeline.tick().chunks == 0
    pipeline.drain()
    assert pipeline.smtp.wait_for_count(50)
    assert len(pipeline.smtp.received) == 50


def test_a_campaign_paused_before_its_chunk_runs_sends_nothing(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(10))
    campaign_id = email_campaign(pipeline)
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    pipeline.pause(campaign_id)

    summaries = pipeline.drain()

    assert [s.windows for s in summaries] == [0]
    assert pipeline.counts(run_id) == {("email", "queued"): 10}
    assert pipeline.smtp.received == []
