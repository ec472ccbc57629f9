"""The tick under a moved clock: exactly one run per due occurrence, even with two ticks racing; every two
weeks, quarterly, yearly and N days before a deadline in Asia/Ho_Chi_Minh; occurrences missed beyond the
grace are recorded, not sent; a send window defers messages to its next opening.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from broadcaster.db.models import AuditEntry, CampaignRun
from broadcaster.vocabulary import MessageStatus
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.workdir_files import citizens

VN = ZoneInfo("Asia/Ho_Chi_Minh")
TWO_YEARS = timedelta(days=730)
# Two simulated years in steps of 3 days (a tick costs a few ms): the grace must then cover a step.
# Nothing plans the runs here: the tick's asking again for a stalled plan (test_broker_refusal.py) stays out.
LONG_GRACE = {"missed_occurrence_grace_seconds": 4 * 86400.0, "plan_stalled_seconds": 10 * 365 * 86400.0}
STEP = timedelta(days=3, hours=1)  # drifts through the hours of the day


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN).astimezone(UTC)


def scheduled(pipeline: Pipeline, schedule: dict[str, Any]) -> str:
    campaign_id = pipeline.approved_campaign(schedule=schedule)
    pipeline.schedule(campaign_id)
    return campaign_id


def runs(pipeline: Pipeline, campaign_id: str) -> list[datetime]:
    with pipeline.context.readers() as session:
        return list(
            session.scalars(
                select(CampaignRun.occurrence_at)
                .where(CampaignRun.campaign_id == campaign_id)
                .order_by(CampaignRun.occurrence_at)
            )
        )


def racing_ticks(pipeline: Pipeline) -> None:
    """Two ticks at the same moment, as two beat processes would after a failover."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            pipeline.tick()
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def settled(pipeline: Pipeline, run_id: int) -> dict[tuple[str, str], int]:
    """Counts with ``delivered`` read as ``sent`` (a receipt may or may not have come back yet)."""
    counts: dict[tuple[str, str], int] = {}
    for (channel, status), number in pipeline.counts(run_id).items():
        key = (channel, "sent" if status == "delivered" else status)
        counts[key] = counts.get(key, 0) + number
    return counts


def walk(pipeline: Pipeline, *, until: datetime, step: timedelta, race: bool = False) -> None:
    while pipeline.clock.now() < until:
        pipeline.advance(seconds=step.total_seconds())
        if race:
            racing_ticks(pipeline)
        else:
            pipeline.tick()
            pipeline.tick()


def test_a_biweekly_campaign_fires_each_occurrence_once_over_two_years_with_racing_ticks(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline(delivery=LONG_GRACE)
    campaign_id = scheduled(
        pipeline, {"start": "2025-06-09 08:00", "rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"}
    )
    end = pipeline.clock.now() + TWO_YEARS

    walk(pipeline, until=end, step=STEP, race=True)

    fired = runs(pipeline, campaign_id)
    expected = [local(2025, 6, 9, 8) + timedelta(weeks=2 * n) for n in range(60)]
    expected = [moment for moment in expected if moment <= pipeline.clock.now()]
    assert fired == expected
    assert len(fired) == len(set(fired)) == 52
    assert all(moment.astimezone(VN).hour == 8 and moment.astimezone(VN).weekday() == 0 for moment in fired)
    assert len(pipeline.enqueuer.runs) == 52  # one plan task per run


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        pytest.param(
            {"start": "2025-07-01 09:00", "rrule": "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1"},
            [
                local(y, m, 1, 9)
                for y, m in [
                    (2025, 7),
                    (2025, 10),
                    (2026, 1),
                    (2026, 4),
                    (2026, 7),
                    (2026, 10),
                    (2027, 1),
                    (2027, 4),
                ]
            ],
            id="quarterly",
        ),
        pytest.param(
            {"start": "2025-09-02 07:30", "rrule": "FREQ=YEARLY"},
            [local(2025, 9, 2, 7, 30), local(2026, 9, 2, 7, 30)],
            id="yearly-national-day",
        ),
        pytest.param(
            {"start": "2025-06-02 08:00", "before_deadlines": ["05-30", "11-30"], "days_before": 7},
            [local(2025, 11, 23, 8), local(2026, 5, 23, 8), local(2026, 11, 23, 8), local(2027, 5, 23, 8)],
            id="7-days-before-plan-143-deadlines",
        ),
    ],
)
def test_recurrences_fire_once_per_occurrence(
    make_pipeline: PipelineFactory, schedule: dict[str, Any], expected: list[datetime]
) -> None:
    pipeline = make_pipeline(delivery=LONG_GRACE)
    campaign_id = scheduled(pipeline, schedule)

    walk(pipeline, until=pipeline.clock.now() + TWO_YEARS, step=STEP)

    assert runs(pipeline, campaign_id) == expected


def test_occurrences_missed_beyond_the_grace_are_recorded_not_sent(pipeline: Pipeline) -> None:
    campaign_id = scheduled(pipeline, {"start": "2025-06-09 08:00", "rrule": "FREQ=WEEKLY;BYDAY=MO"})

    # The engine was stopped for two and a half weeks: Monday 9 and Monday 16 pass without a tick.
    pipeline.clock.set(local(2025, 6, 18, 10))
    report = pipeline.tick()

    assert report.runs_created == []
    assert [moment for _id, moment in report.missed] == [local(2025, 6, 9, 8), local(2025, 6, 16, 8)]
    with pipeline.context.readers() as session:
        actions = list(
            session.scalars(
                select(AuditEntry.action).where(AuditEntry.action == "campaign.occurrence_missed")
            )
        )
    assert len(actions) == 2
    # The next Monday fires normally, within the grace.
    pipeline.clock.set(local(2025, 6, 23, 9))
    assert len(pipeline.tick().runs_created) == 1
    assert runs(pipeline, campaign_id) == [local(2025, 6, 23, 8)]


def test_a_send_window_defers_messages_to_its_next_opening(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(4))
    scheduled(
        pipeline,
        {
            "start": "2025-06-02 20:00",
            "rrule": "FREQ=DAILY",
            "window": {"start": "08:00", "end": "17:00", "weekdays": [1, 2, 3, 4, 5]},
        },
    )
    pipeline.clock.set(local(2025, 6, 2, 20, 1))  # Monday evening: the occurrence is due, the window closed
    run_ids = pipeline.tick().runs_created
    assert len(run_ids) == 1
    pipeline.drain()

    opening = local(2025, 6, 3, 8)
    rows = pipeline.messages(run_ids[0])
    assert {(m.status, m.not_before) for m in rows} == {(MessageStatus.QUEUED, opening)}
    assert pipeline.smtp.received == []
    assert pipeline.smsc.submits == []

    pipeline.clock.set(opening - timedelta(minutes=1))
    pipeline.tick()
    pipeline.drain()
    assert pipeline.counts(run_ids[0]) == {("sms", "queued"): 4, ("email", "queued"): 4}

    pipeline.clock.set(opening)
    pipeline.tick()
    pipeline.drain()
    assert settled(pipeline, run_ids[0]) == {("sms", "sent"): 4, ("email", "sent"): 4}


def test_a_chunk_that_reaches_the_window_end_defers_the_rest(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(4))
    campaign_id = pipeline.approved_campaign(
        schedule={"start": "2025-06-02 08:00", "window": {"start": "08:00", "end": "17:00"}}
    )
    run_id = pipeline.start_run(campaign_id)
    pipeline.clock.set(local(2025, 6, 2, 16, 59))
    pipeline.plan(run_id)  # planned inside the window ...
    pipeline.clock.set(local(2025, 6, 2, 17, 0))  # ... but the chunks run after it closed
    summaries = pipeline.drain()

    assert all(s.stopped is not None and "outside the send window" in s.stopped for s in summaries)
    assert {m.not_before for m in pipeline.messages(run_id)} == {local(2025, 6, 3, 8)}
    pipeline.clock.set(local(2025, 6, 3, 8))
    pipeline.tick()
    pipeline.drain()
    assert settled(pipeline, run_id) == {("sms", "sent"): 4, ("email", "sent"): 4}
