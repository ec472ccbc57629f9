"""Two appliers settling receipts of the same long SMS at once, on PostgreSQL (READ COMMITTED): the last part's
receipt delivers the message whichever applier reads it (broadcaster/outbox/delivery_events.py,
``_lock_messages``). SQLite has one writer at a time, so this race cannot happen there."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.db.base import Base
from broadcaster.db.engine import make_engine
from broadcaster.db.models import InboundRecord, Message, MessagePart
from broadcaster.outbox.delivery_events import read_records, settle_records
from broadcaster.vocabulary import MessageKind, MessageStatus
from tests.broadcaster.test_inbound import PROVIDER, receipt

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WAIT_SECONDS = 30.0


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    made = make_engine(postgres_url)
    Base.metadata.create_all(made)
    yield made
    made.dispose()


def _two_part_sms(sessions: sessionmaker[Session]) -> tuple[int, list[int]]:
    """A sent 2-part SMS and one stored DELIVRD receipt per part; returns the message and record ids."""
    with sessions.begin() as session:
        message = Message(
            idempotency_key="test:race",
            kind=MessageKind.TEST,
            channel="sms",
            provider=PROVIDER,
            address="+84912000001",
            status=MessageStatus.SENT,
            body="SKHCN thong bao",
            segments=2,
            parts_total=2,
            created_at=NOW,
            sent_at=NOW,
        )
        session.add(message)
        session.flush()
        for number, provider_id in ((1, "b1"), (2, "b2")):
            session.add(
                MessagePart(
                    message_id=message.id,
                    number=number,
                    provider=PROVIDER,
                    provider_id=provider_id,
                    updated_at=NOW,
                )
            )
        records = [
            InboundRecord(provider=PROVIDER, channel="sms", received_at=NOW, payload=receipt(provider_id))
            for provider_id in ("b1", "b2")
        ]
        session.add_all(records)
        session.flush()
        return message.id, [record.id for record in records]


def _settle(session: Session, record_id: int) -> None:
    record = session.get(InboundRecord, record_id)
    assert record is not None
    settle_records(session, read_records([record], now=NOW), now=NOW)


def _waits_on_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as connection:
        waiting = connection.scalar(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    return bool(waiting == "Lock")


@pytest.mark.services
def test_receipts_of_both_parts_applied_at_once_deliver_the_message(engine: Engine) -> None:
    sessions = sessionmaker(engine)
    message_id, (first_record, second_record) = _two_part_sms(sessions)
    second_pid: list[int] = []
    second_failed: list[BaseException] = []

    def second_applier() -> None:
        try:
            with sessions.begin() as session:
                second_pid.append(session.scalar(text("SELECT pg_backend_pid()")))
                _settle(session, second_record)
        except BaseException as exc:  # reported by the test, not lost in the thread
            second_failed.append(exc)

    with sessions() as first, first.begin():
        _settle(first, first_record)  # part 1 delivered, not yet committed
        second = threading.Thread(target=second_applier)
        second.start()
        # The second applier either finishes (it counted before the first committed: the race) or waits
        # for the first applier's lock; only then may the first commit.
        deadline = time.monotonic() + WAIT_SECONDS
        while second.is_alive() and not (second_pid and _waits_on_a_lock(engine, second_pid[0])):
            assert time.monotonic() < deadline, "the second applier neither finished nor waited"
            second.join(0.01)
    second.join(WAIT_SECONDS)

    assert not second.is_alive()
    assert not second_failed
    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        assert (message.status, message.parts_delivered) == (MessageStatus.DELIVERED, 2)
        states = session.scalars(select(MessagePart.state).where(MessagePart.message_id == message_id))
        assert sorted(states) == ["delivered", "delivered"]
