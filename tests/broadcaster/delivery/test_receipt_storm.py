"""Two beats and two receipt appliers under a receipt storm on PostgreSQL (issue 16, defect 1).

The tick's retry of unprocessed inbound records and a worker's applier (``apply_inbound``) used to work the same
rows at once: the applier locked a page of records (``FOR UPDATE SKIP LOCKED``) and then their messages, the
tick updated messages and then the same records, and PostgreSQL killed one of them with a deadlock, the beat
included. Now the tick takes the applier's per-provider lease, and exactly one beat ticks (the leader lease).

Messages, parts and receipts are written straight into the database (as tests/broadcaster/test_inbound.py does);
the beats run the real beat loop (broadcaster/beat.py) in threads, the appliers the task's own body.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from broadcaster.beat import Beat
from broadcaster.db.models import Campaign, CampaignRun, InboundRecord, Message, MessagePart
from broadcaster.lease import run_exclusively
from broadcaster.outbox.inbound import apply_pending
from broadcaster.outbox.replies import ReplyRules
from broadcaster.vocabulary import MessageKind, MessageStatus
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.peers.polling import wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]

PROVIDER = "sms_main"
MESSAGES = 1500  # two parts each: 3,000 receipts
DELIVRD = 2  # SMPP v3.4 §5.2.28 message_state DELIVERED


def receipt(provider_id: str) -> dict[str, Any]:
    """A stored deliver_sm record of a DELIVRD receipt (see channels/sms/receipts.py)."""
    return {
        "command": "deliver_sm",
        "sequence": 1,
        "esm_class": 0x04,
        "data_coding": 0,
        "short_message_hex": "",
        "receipted_message_id": provider_id,
        "message_state": DELIVRD,
    }


def sent_messages_with_receipts(pipeline: Pipeline) -> None:
    """Two-part SMS the SMSC accepted, and a receipt per part: the first parts' receipts in order, then the
    second parts' in reverse, so every page an applier locks shares messages with pages far from it."""
    now = pipeline.clock.now()
    received = now - timedelta(minutes=1)  # old enough for the tick's retry too
    with pipeline.context.sessions.begin() as session:
        ids = list(
            session.scalars(
                insert(Message).returning(Message.id),
                [
                    {
                        "idempotency_key": f"storm:{n}",
                        "kind": MessageKind.TEST,
                        "channel": "sms",
                        "provider": PROVIDER,
                        "address": f"+8491{n:07d}",
                        "status": MessageStatus.SENT,
                        "body": "SKHCN thong bao",
                        "parts_total": 2,
                        "created_at": now,
                        "sent_at": now,
                    }
                    for n in range(MESSAGES)
                ],
            )
        )
        session.execute(
            insert(MessagePart),
            [
                {
                    "message_id": message_id,
                    "number": part,
                    "provider": PROVIDER,
                    "provider_id": f"{message_id}-{part}",
                    "updated_at": now,
                }
                for message_id in ids
                for part in (1, 2)
            ],
        )
        order = [f"{i}-1" for i in ids] + [f"{i}-2" for i in reversed(ids)]
        session.execute(
            insert(InboundRecord),
            [
                {"provider": PROVIDER, "channel": "sms", "received_at": received, "payload": receipt(pid)}
                for pid in order
            ],
        )


def applier(pipeline: Pipeline) -> Callable[[], object]:
    """The body of the ``apply_inbound`` task (broadcaster/tasks.py)."""
    sessions, clock = pipeline.context.sessions, pipeline.clock
    replies = ReplyRules.from_settings(pipeline.context.settings)
    return lambda: run_exclusively(
        sessions,
        f"apply-inbound:{PROVIDER}",
        lambda: apply_pending(sessions, provider=PROVIDER, clock=clock, replies=replies, page=100),
        clock=clock,
    )


def unprocessed(pipeline: Pipeline) -> int:
    with pipeline.context.readers() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(InboundRecord).where(InboundRecord.processed_at.is_(None))
            )
            or 0
        )


def delivered(pipeline: Pipeline) -> int:
    with pipeline.context.readers() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Message).where(Message.status == MessageStatus.DELIVERED)
            )
            or 0
        )


@pytest.fixture
def storm(make_pipeline: PipelineFactory, postgres_url: str) -> Pipeline:
    pipeline = make_pipeline(database_url=postgres_url, delivery={"tick_seconds": 0.05})
    sent_messages_with_receipts(pipeline)
    return pipeline


def test_two_beats_and_two_appliers_apply_every_receipt_once_without_a_crash(storm: Pipeline) -> None:
    pipeline = storm
    campaign_id = pipeline.approved_campaign(schedule={"start": "2025-06-02 08:00"})
    pipeline.schedule(campaign_id)  # due at the frozen clock's moment: one run, whoever ticks
    stop = threading.Event()
    errors: list[BaseException] = []
    lines: list[str] = []

    def guarded(work: Callable[[], object], *, loop: bool) -> Callable[[], None]:
        def run() -> None:
            try:
                while True:
                    work()
                    if not loop or stop.is_set():
                        return
            except BaseException as exc:  # surfaced in the test thread below
                errors.append(exc)

        return run

    beats = [
        Beat(pipeline.context, enqueuer=pipeline.enqueuer, say=lines.append, poll_seconds=0.05)
        for _ in range(2)
    ]
    threads = [threading.Thread(target=guarded(functools.partial(b.run, stop), loop=False)) for b in beats]
    threads += [threading.Thread(target=guarded(applier(pipeline), loop=True)) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_until(
            lambda: errors or (unprocessed(pipeline) == 0 and any(b.ticks for b in beats)),
            timeout=120,
            what="every receipt applied and a tick done",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    assert delivered(pipeline) == MESSAGES
    assert sorted(bool(b.ticks) for b in beats) == [False, True], "exactly one beat ticked"
    assert not [line for line in lines if "failed" in line], lines
    with pipeline.context.readers() as session:
        assert session.scalar(select(Campaign.state).where(Campaign.id == campaign_id)) is not None
        runs = list(session.scalars(select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id)))
    assert len(runs) == 1, runs
