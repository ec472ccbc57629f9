"""Chunks cut while a run is planned (``outbox/plan_chunks.py``): as large as ``cut_chunks`` made them, across
pages; every due row in one; enqueued once, after the run is planned; and a planning that died after a page
and starts again from its checkpoint ends with the same chunks, nothing chunked twice or left out."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from broadcaster.db.models import Chunk, Message
from broadcaster.outbox import planner
from broadcaster.vocabulary import MessageStatus
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import citizens


def _chunks(pipeline: Pipeline, run_id: int) -> list[tuple[str, int, list[int]]]:
    """(channel, stored size, contacts in order) per chunk of the run, in the order they were made."""
    members: dict[int, list[int]] = defaultdict(list)
    for message in pipeline.messages(run_id):
        assert message.status == MessageStatus.QUEUED
        assert message.chunk_id is not None
        members[message.chunk_id].append(message.contact_id or 0)
    with pipeline.context.readers() as session:
        chunks = session.scalars(select(Chunk).where(Chunk.run_id == run_id).order_by(Chunk.id)).all()
        return [(c.channel, c.size, members[c.id]) for c in chunks]


def die_on_the_third_page(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The planner's worker dies as it inserts the third page; returns the real insert, to put back."""
    insert_chunked = planner._insert_chunked
    pages = 0

    def dies_on_the_third_page(*args: Any, **kwargs: Any) -> None:
        nonlocal pages
        pages += 1
        if pages == 3:
            raise RuntimeError("the plan task's worker died")
        insert_chunked(*args, **kwargs)

    monkeypatch.setattr(planner, "_insert_chunked", dies_on_the_third_page)
    return insert_chunked


def test_chunks_span_pages_at_the_providers_size_and_are_enqueued_once_planned(make_pipeline: Any) -> None:
    pipeline: Pipeline = make_pipeline(delivery={"plan_page_size": 10, "chunk_size": 8})
    pipeline.add_contacts(citizens(25))
    run_id = pipeline.start_run(pipeline.approved_campaign())

    assert pipeline.plan(run_id) == 50

    chunks = _chunks(pipeline, run_id)
    for channel in ("sms", "email"):
        mine = [(size, contacts) for kind, size, contacts in chunks if kind == channel]
        assert [size for size, _ in mine] == [8, 8, 8, 1]
        assert [len(contacts) for _, contacts in mine] == [8, 8, 8, 1]
        assert [c for _, contacts in mine for c in contacts] == list(range(1, 26))
    with pipeline.context.readers() as session:
        unfinished = session.scalars(select(Chunk.id).where(Chunk.finished_at.is_(None)).order_by(Chunk.id))
        assert [chunk_id for chunk_id, _queue in pipeline.enqueuer.chunks] == list(unfinished)


def test_a_planning_that_died_after_a_page_ends_with_the_same_chunks(
    make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline: Pipeline = make_pipeline(delivery={"plan_page_size": 10, "chunk_size": 8})
    pipeline.add_contacts(citizens(25))
    campaign_id = pipeline.approved_campaign()
    whole = pipeline.start_run(campaign_id)
    pipeline.plan(whole)
    pipeline.enqueuer.chunks.clear()
    pipeline.clock.advance(timedelta(minutes=1))

    interrupted = pipeline.start_run(campaign_id, again=True)
    insert_chunked = die_on_the_third_page(monkeypatch)
    with pytest.raises(RuntimeError):
        pipeline.plan(interrupted)
    assert pipeline.enqueuer.chunks == []  # nothing goes before the run is planned
    with pipeline.context.readers() as session:
        kept = session.scalars(
            select(Message.contact_id).where(Message.run_id == interrupted, Message.contact_id.is_not(None))
        ).all()
    assert sorted({c for c in kept if c is not None}) == list(
        range(1, 21)
    )  # two pages committed with the checkpoint

    monkeypatch.setattr(planner, "_insert_chunked", insert_chunked)
    assert pipeline.plan(interrupted) == 50

    assert _chunks(pipeline, interrupted) == _chunks(pipeline, whole)
    with pipeline.context.readers() as session:
        of_run = session.scalars(select(Chunk.id).where(Chunk.run_id == interrupted).order_by(Chunk.id))
        assert [chunk_id for chunk_id, _queue in pipeline.enqueuer.chunks] == list(of_run)


def test_the_sweeper_leaves_alone_the_chunks_of_a_run_still_being_planned(
    make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A city-wide run may take longer to plan than ``stuck_after_seconds``: its chunks wait for the end of
    planning to be enqueued, and the stuck sweeper must not take them for lost ones (nor those of a planner
    that died: the one that resumes at the checkpoint finishes them)."""
    pipeline: Pipeline = make_pipeline(
        delivery={"plan_page_size": 10, "chunk_size": 8, "plan_stalled_seconds": 10**6}
    )
    pipeline.add_contacts(citizens(25))
    run_id = pipeline.start_run(pipeline.approved_campaign())
    insert_chunked = die_on_the_third_page(monkeypatch)
    with pytest.raises(RuntimeError):
        pipeline.plan(run_id)
    pipeline.clock.advance(timedelta(seconds=pipeline.context.settings.delivery.stuck_after_seconds + 1))

    assert pipeline.tick().swept_chunks == 0
    with pipeline.context.readers() as session:
        assert session.scalar(select(Chunk.id).where(Chunk.finished_at.is_not(None)).limit(1)) is None

    monkeypatch.setattr(planner, "_insert_chunked", insert_chunked)
    assert pipeline.plan(run_id) == 50
    chunks = _chunks(pipeline, run_id)
    for channel in ("sms", "email"):
        assert [size for kind, size, _ in chunks if kind == channel] == [8, 8, 8, 1]


def test_a_chunk_waiting_its_turn_is_not_lost_and_one_its_queue_moved_past_is(make_pipeline: Any) -> None:
    """A long queue (a city-wide run's 1,500 chunks on one gateway) keeps chunks waiting longer than
    ``stuck_after_seconds``: while their queue moves they are not lost; a chunk the queue moved past is."""
    pipeline: Pipeline = make_pipeline(delivery={"chunk_size": 5})
    pipeline.add_contacts(citizens(30))
    campaign_id = pipeline.approved_campaign(
        channels={"sms": {"template": "sms/thu-nghiem", "provider": "sms_main"}}
    )
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    chunks = [chunk_id for chunk_id, _queue in pipeline.enqueuer.chunks]
    assert len(chunks) == 6
    pipeline.enqueuer.chunks.clear()  # the gateway takes them one by one below
    past_the_cutoff = timedelta(seconds=pipeline.context.settings.delivery.stuck_after_seconds + 1)

    pipeline.run_chunk(chunks[0])
    pipeline.clock.advance(past_the_cutoff)
    pipeline.run_chunk(chunks[1])
    assert pipeline.tick().swept_chunks == 0  # four chunks older than the cutoff, their queue moving

    pipeline.run_chunk(chunks[3])  # the task of chunks[2] was lost
    pipeline.clock.advance(past_the_cutoff)
    pipeline.run_chunk(chunks[4])
    report = pipeline.tick()
    assert report.swept_chunks == 1  # chunks[2], whose rows are cut again; chunks[5] still waits
    assert report.chunks == 1
    with pipeline.context.readers() as session:
        assert session.scalar(select(Chunk.finished_at).where(Chunk.id == chunks[5])) is None

    pipeline.run_chunk(chunks[5])
    pipeline.drain()
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 30})
    messages = pipeline.messages(run_id)
    parts = sorted(f"+{s.destination}" for s in pipeline.smsc.accepted)  # each part once: nothing sent twice
    assert parts == sorted(m.address for m in messages for _ in range(m.segments or 1))
