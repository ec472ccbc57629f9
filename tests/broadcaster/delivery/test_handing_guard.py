"""The handing guard: a message stopped between its claim and its hand-over (an opt-out suppressed it) is not
marked handed, so it is never written, whether the adapter stamps messages itself (SMPP, SMTP) or the
dispatcher marks the whole window (the others); its row keeps the reason it was stopped for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broadcaster.outbox.claims import claim, mark_handed
from broadcaster.pending import stop_pending
from broadcaster.vocabulary import MessageStatus
from consent.policy import REASON_TEXTS, ExclusionReason
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_claims import planned_chunk
from tests.broadcaster.delivery.test_toy_channel import empty_toy
from tests.broadcaster.delivery.workdir_files import citizens
from tests.toy import ToyAdapter

STOPPED_PHONE = "+84912000002"  # citizens(...)[1]
REASON = REASON_TEXTS[ExclusionReason.WITHDRAWN]

__all__ = ["empty_toy"]  # the fixture (autouse), shared with test_toy_channel


def test_mark_handed_returns_the_rows_it_marked_and_skips_stopped_ones(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline()
    run_id, chunk_id = planned_chunk(pipeline, 3)
    sessions, now = pipeline.context.sessions, pipeline.clock.now()
    ids = sorted(row.id for row in claim(sessions, chunk_id, 3, now))
    with sessions.begin() as session:
        stopped = stop_pending(
            session,
            channel="email",
            address="Cong.Dan2@example.vn",
            purposes=None,
            reason=ExclusionReason.WITHDRAWN,
            now=now,
        )
    assert stopped == 1

    assert sorted(mark_handed(sessions, ids, clock=pipeline.clock)) == [ids[0], ids[2]]
    assert mark_handed(sessions, ids, clock=pipeline.clock) == []  # already handed: not twice
    by_id = {m.id: m for m in pipeline.messages(run_id)}
    assert (by_id[ids[1]].status, by_id[ids[1]].handed_at) == (MessageStatus.SUPPRESSED, None)
    assert all(by_id[i].handed_at is not None for i in (ids[0], ids[2]))


def stop_after_each_claim(pipeline: Pipeline, address: str) -> None:
    """An opt-out arrives right after every claim of the pipeline's dispatcher, before the hand-over."""
    pipeline.start_engine()
    dispatcher = pipeline.dispatcher
    assert dispatcher is not None
    claim_window: Callable[..., Any] = dispatcher._claim

    def claim_then_stop(chunk_id: int, window: int) -> Any:
        claimed = claim_window(chunk_id, window)
        with pipeline.context.sessions.begin() as session:
            stop_pending(
                session,
                channel="sms",
                address=address,
                purposes=None,
                reason=ExclusionReason.WITHDRAWN,
                now=pipeline.clock.now(),
            )
        return claimed

    dispatcher._claim = claim_then_stop  # type: ignore[method-assign]


def sms_campaign(pipeline: Pipeline, provider: str, people: int) -> int:
    pipeline.add_contacts(citizens(people))
    campaign = pipeline.approved_campaign(
        channels={"sms": {"template": "sms/thu-nghiem", "provider": provider, "unaccented": True}}
    )
    run_id = pipeline.start_run(campaign)
    pipeline.plan(run_id)
    return run_id


def outcome(pipeline: Pipeline, run_id: int) -> dict[str, tuple[str, str | None]]:
    return {m.address: (m.status.value, m.reason) for m in pipeline.messages(run_id)}


def test_a_window_the_dispatcher_marks_leaves_the_stopped_row_out(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(providers={"toy": {"channel": "sms", "type": "tests.toy:ToyAdapter"}})
    run_id = sms_campaign(pipeline, "toy", 3)
    stop_after_each_claim(pipeline, STOPPED_PHONE)

    pipeline.drain()

    assert sorted(m.address for m in ToyAdapter.sent) == ["+84912000001", "+84912000003"]
    assert outcome(pipeline, run_id) == {
        "+84912000001": ("sent", None),
        STOPPED_PHONE: ("suppressed", REASON),
        "+84912000003": ("sent", None),
    }


def test_an_adapter_that_stamps_never_writes_the_stopped_message(pipeline: Pipeline) -> None:
    run_id = sms_campaign(pipeline, "sms_main", 3)
    stop_after_each_claim(pipeline, STOPPED_PHONE)

    summaries = pipeline.drain()

    assert sum(s.sent for s in summaries) == 2
    assert (
        sum(s.deferred + s.failed + s.unknown for s in summaries) == 0
    )  # nothing recorded for the stopped one
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 2})
    assert sorted(s.destination for s in pipeline.smsc.submits) == ["84912000001", "84912000003"]
    assert outcome(pipeline, run_id)[STOPPED_PHONE] == ("suppressed", REASON)
