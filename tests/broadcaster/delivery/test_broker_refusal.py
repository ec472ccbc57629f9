"""A chunk whose task the broker refused (down, restarting) goes back at once: the planner and the tick commit
a chunk's rows, then send its task; when that send fails, the chunk is finished and its rows unchunked, so the
next tick cuts them again, instead of leaving them to the stuck sweeper (``stuck_after_seconds``) with no task
to run them. Found by the broker restart of the distributed fault tests (test_distributed_faults.py). A run
whose plan task the broker refused is asked for again by the tick once its planning stalled."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from broadcaster.db.models import CampaignRun, Chunk
from broadcaster.outbox.planner import plan_run
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.outbox.scheduler import tick
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_crash import EMAIL_ONLY
from tests.broadcaster.delivery.workdir_files import citizens

PEOPLE = 30
CHUNK_SIZE = 10


class RefusingBroker(RecordingEnqueuer):
    """Takes the first ``accept`` chunk tasks, then refuses as a broker that went away does."""

    def __init__(self, accept: int) -> None:
        super().__init__()
        self.accept = accept

    def dispatch_chunk(self, chunk_id: int, *, queue: str) -> None:
        if len(self.chunks) >= self.accept:
            raise ConnectionRefusedError(111, "Connection refused")
        super().dispatch_chunk(chunk_id, queue=queue)


def unfinished_chunks(pipeline: Pipeline) -> set[int]:
    with pipeline.context.readers() as session:
        return set(session.scalars(select(Chunk.id).where(Chunk.finished_at.is_(None))))


def plan_with(pipeline: Pipeline, run_id: int, enqueuer: RecordingEnqueuer) -> None:
    context = pipeline.context
    plan_run(
        context.sessions, run_id=run_id, settings=context.settings, clock=pipeline.clock, enqueuer=enqueuer
    )


@pytest.fixture
def planned(make_pipeline: PipelineFactory) -> tuple[Pipeline, int]:
    pipeline = make_pipeline(delivery={"chunk_size": CHUNK_SIZE})
    pipeline.add_contacts(citizens(PEOPLE))
    return pipeline, pipeline.start_run(pipeline.approved_campaign(channels=EMAIL_ONLY))


def test_chunks_the_broker_refused_to_the_planner_are_cut_again_by_the_next_tick(
    planned: tuple[Pipeline, int],
) -> None:
    pipeline, run_id = planned
    broker = RefusingBroker(accept=1)
    with pytest.raises(ConnectionRefusedError):
        plan_with(pipeline, run_id, broker)

    assert unfinished_chunks(pipeline) == {broker.chunks[0][0]}  # only the one with a task
    report = pipeline.tick()  # at once: the clock has not moved, nothing is stuck yet
    assert report.chunks == PEOPLE // CHUNK_SIZE - 1
    assert report.swept_chunks == 0
    pipeline.enqueuer.chunks.insert(0, broker.chunks[0])
    pipeline.drain()
    assert pipeline.counts(run_id) == {("email", "sent"): PEOPLE}
    assert pipeline.smtp.wait_for_count(PEOPLE)


def test_chunks_the_broker_refused_to_the_tick_are_cut_again_by_the_next_one(
    planned: tuple[Pipeline, int],
) -> None:
    pipeline, run_id = planned
    with pytest.raises(ConnectionRefusedError):
        plan_with(pipeline, run_id, RefusingBroker(accept=0))
    context = pipeline.context
    with pytest.raises(ConnectionRefusedError):
        tick(
            context.sessions,
            settings=context.settings,
            clock=pipeline.clock,
            enqueuer=RefusingBroker(accept=0),
        )

    assert unfinished_chunks(pipeline) == set()
    assert pipeline.tick().chunks == PEOPLE // CHUNK_SIZE
    pipeline.drain()
    assert pipeline.counts(run_id) == {("email", "sent"): PEOPLE}


def test_a_run_whose_plan_task_was_refused_is_asked_for_again_once_its_planning_stalled(
    planned: tuple[Pipeline, int],
) -> None:
    """``send`` commits the run, then the broker refuses its plan task: nothing would ever plan it (issue
    16). The tick asks for it again once no page was planned for ``plan_stalled_seconds``, once per period."""
    pipeline, run_id = planned  # started; its plan task never reached a worker
    stalled_after = pipeline.context.settings.delivery.plan_stalled_seconds

    assert pipeline.tick().runs_replanned == []  # just started: a planner may be on its way
    pipeline.advance(seconds=stalled_after + 1)
    assert pipeline.tick().runs_replanned == [run_id]
    assert pipeline.enqueuer.runs == [run_id]
    assert pipeline.tick().runs_replanned == []  # asked for: not again before another period

    pipeline.drain()
    assert pipeline.counts(run_id) == {("email", "sent"): PEOPLE}
    pipeline.advance(seconds=stalled_after + 1)
    assert pipeline.tick().runs_replanned == []  # planned: nothing to ask for


def test_a_run_a_planner_is_working_on_is_not_asked_for_again(planned: tuple[Pipeline, int]) -> None:
    pipeline, run_id = planned
    stalled_after = pipeline.context.settings.delivery.plan_stalled_seconds
    pipeline.advance(seconds=stalled_after - 1)
    with pipeline.context.sessions.begin() as session:  # a planner storing a page now
        session.execute(
            update(CampaignRun).where(CampaignRun.id == run_id).values(plan_touched_at=pipeline.clock.now())
        )
    pipeline.advance(seconds=stalled_after - 1)

    assert pipeline.tick().runs_replanned == []
