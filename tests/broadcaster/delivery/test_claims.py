"""The claim and its undoing, without the send loop: a claim takes the chunk's due rows (queued → sending,
one attempt more), an unclaim gives them back as they were unless their campaign was cancelled meanwhile,
and a release hands the rest of a chunk back to the tick."""

from __future__ import annotations

from datetime import timedelta

from broadcaster.outbox.claims import claim, due_count, release, unclaim
from broadcaster.outbox.composition import VersionCache, compose
from broadcaster.vocabulary import MessageStatus
from channels.base import Channel
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.workdir_files import citizens


def planned_chunk(pipeline: Pipeline, people: int) -> tuple[int, int]:
    pipeline.add_contacts(citizens(people))
    campaign_id = pipeline.approved_campaign(
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}}
    )
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    chunk_id, _queue = pipeline.enqueuer.chunks.pop(0)
    return run_id, chunk_id


def test_a_claim_takes_the_due_rows_and_an_unclaim_gives_them_back_as_they_were(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline()
    run_id, chunk_id = planned_chunk(pipeline, 5)
    sessions, now = pipeline.context.sessions, pipeline.clock.now()
    assert due_count(pipeline.context.readers, chunk_id, 3, now) == 3

    rows = claim(sessions, chunk_id, 3, now)
    assert len(rows) == 3
    claimed = {m.id: m for m in pipeline.messages(run_id) if m.status == MessageStatus.SENDING}
    assert set(claimed) == {row.id for row in rows}
    assert all(m.attempts == 1 and m.claimed_at is not None for m in claimed.values())
    assert due_count(pipeline.context.readers, chunk_id, 5, now) == 2  # the others are still due

    unclaim(sessions, [row.id for row in rows], clock=pipeline.clock)
    assert {m.status for m in pipeline.messages(run_id)} == {MessageStatus.QUEUED}
    assert all(m.attempts == 0 and m.claimed_at is None for m in pipeline.messages(run_id))


def test_rows_unclaimed_after_a_cancel_are_cancelled(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    run_id, chunk_id = planned_chunk(pipeline, 4)
    rows = claim(pipeline.context.sessions, chunk_id, 4, pipeline.clock.now())
    campaign_id = pipeline.messages(run_id)[0].campaign_id
    assert campaign_id is not None
    pipeline.cancel(campaign_id)

    unclaim(pipeline.context.sessions, [row.id for row in rows], clock=pipeline.clock)
    assert {(m.status, m.reason) for m in pipeline.messages(run_id)} == {
        (MessageStatus.CANCELLED, "campaign cancelled")
    }


def test_a_release_hands_the_chunks_rows_back_to_the_tick(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    run_id, chunk_id = planned_chunk(pipeline, 3)
    later = pipeline.clock.now() + timedelta(hours=2)

    release(pipeline.context.sessions, chunk_id, not_before=later)
    rows = pipeline.messages(run_id)
    assert all(m.chunk_id is None and m.status == MessageStatus.QUEUED for m in rows)
    assert all(m.not_before is not None and m.not_before == later for m in rows)


def test_claimed_rows_are_composed_in_id_order_for_the_wire(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    _run_id, chunk_id = planned_chunk(pipeline, 3)
    rows = claim(pipeline.context.sessions, chunk_id, 3, pipeline.clock.now())
    settings = pipeline.context.settings

    with pipeline.context.readers() as session:
        claimed, outbound = compose(
            session, list(reversed(rows)), versions=VersionCache(settings), settings=settings
        )

    assert [m.message_id for m in outbound] == sorted(row.id for row in rows) == list(claimed)
    assert all(c.channel == Channel.EMAIL and c.attempts == 1 for c in claimed.values())
    assert all(m.subject and m.body for m in outbound)
