"""Stored receipts applied per provider (``apply_pending``) and the gateway's store-then-hand-off handler.

Messages and parts are written straight into a fresh working directory's database; receipts are deliver_sm
records as the SMPP adapter stores them (TLV receipts: ``receipted_message_id`` and ``message_state``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import InboundRecord, Message, MessagePart
from broadcaster.outbox.delivery_events import UNMATCHED_AFTER
from broadcaster.outbox.inbound import apply_pending, inbound_batch_handler
from broadcaster.vocabulary import MessageKind, MessageStatus
from tests.broadcaster.conftest import START

PROVIDER = "sms_main"
OTHER = "sms_backup"
DELIVRD = 2  # SMPP v3.4 §5.2.28 message_state DELIVERED


def receipt(provider_id: str) -> dict[str, Any]:
    """A stored deliver_sm record of a DELIVRD receipt for ``provider_id`` (see channels/sms/receipts.py)."""
    return {
        "command": "deliver_sm",
        "sequence": 1,
        "esm_class": 0x04,  # SMSC delivery receipt
        "data_coding": 0,
        "short_message_hex": "",
        "receipted_message_id": provider_id,
        "message_state": DELIVRD,
        "received_at": START.isoformat(),
    }


def sent_sms(context: AppContext, provider_id: str, *, provider: str = PROVIDER) -> int:
    """A one-part SMS the provider accepted under ``provider_id``; returns the message id."""
    now = context.clock.now()
    with context.sessions.begin() as session:
        message = Message(
            idempotency_key=f"test:{provider}:{provider_id}",
            kind=MessageKind.TEST,
            channel="sms",
            provider=provider,
            address="+84912000001",
            status=MessageStatus.SENT,
            body="SKHCN thong bao",
            parts_total=1,
            created_at=now,
            sent_at=now,
        )
        session.add(message)
        session.flush()
        session.add(
            MessagePart(
                message_id=message.id, number=1, provider=provider, provider_id=provider_id, updated_at=now
            )
        )
        return message.id


def store(context: AppContext, payloads: list[dict[str, Any]], *, provider: str = PROVIDER) -> list[int]:
    """Raw inbound records, unprocessed, in this order; returns their ids."""
    with context.sessions.begin() as session:
        records = [
            InboundRecord(provider=provider, channel="sms", received_at=context.clock.now(), payload=p)
            for p in payloads
        ]
        session.add_all(records)
        session.flush()
        return [record.id for record in records]


def status_of(context: AppContext, message_id: int) -> MessageStatus:
    with context.readers() as session:
        message = session.get(Message, message_id)
        assert message is not None
        return message.status


def unprocessed_ids(context: AppContext) -> list[int]:
    with context.readers() as session:
        query = (
            select(InboundRecord.id).where(InboundRecord.processed_at.is_(None)).order_by(InboundRecord.id)
        )
        return list(session.scalars(query))


@pytest.mark.parametrize("strays", [2, 5])
def test_unmatched_records_do_not_hide_a_newer_matching_one(
    context: AppContext, clock: FrozenClock, strays: int
) -> None:
    """With pages of 2, more young unmatched receipts than a page (or exactly one) still let the matching
    receipt behind them settle; the strays stay unprocessed for a later part."""
    message_id = sent_sms(context, "1a2b")
    stray_ids = store(context, [receipt(f"dead{n:04x}") for n in range(strays)])
    store(context, [receipt("1A2B")])

    settled, waiting = apply_pending(context.sessions, provider=PROVIDER, clock=clock, page=2)

    assert (settled, waiting) == (1, strays)
    assert status_of(context, message_id) is MessageStatus.DELIVERED
    assert unprocessed_ids(context) == stray_ids


def test_only_the_given_providers_records_are_applied(context: AppContext, clock: FrozenClock) -> None:
    """Another provider's pending receipt is neither applied nor counted; its own call applies it."""
    mine = sent_sms(context, "77", provider=PROVIDER)
    theirs = sent_sms(context, "88", provider=OTHER)
    store(context, [receipt("77")], provider=PROVIDER)
    [other_record] = store(context, [receipt("88")], provider=OTHER)

    assert apply_pending(context.sessions, provider=PROVIDER, clock=clock) == (1, 0)
    assert status_of(context, mine) is MessageStatus.DELIVERED
    assert status_of(context, theirs) is MessageStatus.SENT
    assert unprocessed_ids(context) == [other_record]

    assert apply_pending(context.sessions, provider=OTHER, clock=clock) == (1, 0)
    assert status_of(context, theirs) is MessageStatus.DELIVERED


def test_a_waiting_receipt_settles_once_its_part_is_stored(context: AppContext, clock: FrozenClock) -> None:
    """A receipt that beat its part waits; the next call, after the part is stored, settles it."""
    store(context, [receipt("5f5e100")])
    assert apply_pending(context.sessions, provider=PROVIDER, clock=clock, page=2) == (0, 1)

    message_id = sent_sms(context, "5f5e100")
    assert apply_pending(context.sessions, provider=PROVIDER, clock=clock, page=2) == (1, 0)

    assert status_of(context, message_id) is MessageStatus.DELIVERED
    assert unprocessed_ids(context) == []


def test_a_receipt_for_the_parts_accepted_so_far_does_not_deliver_the_message(
    context: AppContext, clock: FrozenClock
) -> None:
    """A 2-part SMS whose part 2 the SMSC refused: part 1 is stored (a retry sends only part 2) and the
    message is held as unknown when the retry went unanswered. Part 1's DELIVRD delivers part 1 only."""
    message_id = sent_sms(context, "a1")
    with context.sessions.begin() as session:
        message = session.get(Message, message_id)
        assert message is not None
        message.status, message.segments, message.parts_total, message.hold = (
            MessageStatus.UNKNOWN,
            2,
            0,
            True,
        )
    store(context, [receipt("a1")])

    assert apply_pending(context.sessions, provider=PROVIDER, clock=clock) == (1, 0)

    assert status_of(context, message_id) is MessageStatus.UNKNOWN
    with context.readers() as session:
        assert session.scalar(select(Message.parts_delivered).where(Message.id == message_id)) == 1


def test_unmatched_records_past_the_grace_are_closed_and_counted_settled(
    context: AppContext, clock: FrozenClock
) -> None:
    """Once older than UNMATCHED_AFTER, receipts that match nothing are closed as unmatched on every page."""
    store(context, [receipt(f"dead{n:04x}") for n in range(5)])
    clock.advance(UNMATCHED_AFTER + timedelta(seconds=1))

    assert apply_pending(context.sessions, provider=PROVIDER, clock=clock, page=2) == (5, 0)
    with context.readers() as session:
        outcomes = list(session.scalars(select(InboundRecord.outcome)))
    assert outcomes == ["unmatched"] * 5


def test_hand_off_handler_stores_raw_rows_and_asks_once_per_batch(
    context: AppContext, clock: FrozenClock
) -> None:
    """With hand_off the batch is committed unapplied (the handler sees it from a new session) and hand_off()
    is called once per batch, with no arguments; apply_pending then settles what was stored."""
    message_id = sent_sms(context, "1a2b")
    seen_at_hand_off: list[int] = []

    def hand_off(*args: Any) -> None:
        assert args == ()
        with context.readers() as session:
            count = session.scalar(select(func.count()).select_from(InboundRecord))
        seen_at_hand_off.append(int(count or 0))

    handle = inbound_batch_handler(
        context.sessions, provider=PROVIDER, channel="sms", clock=clock, hand_off=hand_off
    )
    handle([receipt("dead0001"), receipt("1A2B"), receipt("dead0002")])
    handle([receipt("dead0003")])

    assert seen_at_hand_off == [3, 4]  # one call per batch, each after its rows were committed
    with context.readers() as session:
        rows = list(session.scalars(select(InboundRecord).order_by(InboundRecord.id)))
    assert [(r.provider, r.channel, r.processed_at) for r in rows] == [(PROVIDER, "sms", None)] * 4
    assert [r.payload["receipted_message_id"] for r in rows] == ["dead0001", "1A2B", "dead0002", "dead0003"]
    assert status_of(context, message_id) is MessageStatus.SENT  # not applied by the handler

    assert apply_pending(context.sessions, provider=PROVIDER, clock=clock) == (1, 3)
    assert status_of(context, message_id) is MessageStatus.DELIVERED


def test_a_failing_hand_off_keeps_the_stored_rows(
    context: AppContext, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A hand_off that raises is logged, not raised: the rows are committed already and the adapter may answer."""

    def hand_off() -> None:
        raise ConnectionError("broker down")

    handle = inbound_batch_handler(
        context.sessions, provider=PROVIDER, channel="sms", clock=clock, hand_off=hand_off
    )
    with caplog.at_level(logging.ERROR, logger="broadcaster.outbox.inbound"):
        handle([receipt("1a2b"), receipt("1a2c")])

    assert len(unprocessed_ids(context)) == 2
    assert any("could not hand off 2" in r.getMessage() for r in caplog.records)


def test_handler_without_hand_off_applies_the_batch_at_once(context: AppContext, clock: FrozenClock) -> None:
    """Without hand_off the matching receipt settles in the same call; the unmatched one stays pending."""
    message_id = sent_sms(context, "1a2b")
    handle = inbound_batch_handler(context.sessions, provider=PROVIDER, channel="sms", clock=clock)

    handle([receipt("1A2B"), receipt("dead0001")])

    assert status_of(context, message_id) is MessageStatus.DELIVERED
    with context.readers() as session:
        rows = list(session.scalars(select(InboundRecord).order_by(InboundRecord.id)))
    assert [r.processed_at is not None for r in rows] == [True, False]
    assert rows[0].outcome == "delivered"


def test_an_unreadable_record_is_closed_and_does_not_block_the_ones_behind_it(
    context: AppContext, clock: FrozenClock
) -> None:
    """A record the parser cannot read is closed with the reason (kept raw); the receipt after it settles."""
    message_id = sent_sms(context, "9c")
    [broken] = store(context, [{**receipt("9c"), "esm_class": "not a number"}])
    store(context, [receipt("9C")])

    settled, waiting = apply_pending(context.sessions, provider=PROVIDER, clock=clock, page=1)

    assert (settled, waiting) == (2, 0)
    assert status_of(context, message_id) is MessageStatus.DELIVERED
    with context.readers() as session:
        record = session.get(InboundRecord, broken)
        assert record is not None
        assert record.processed_at is not None
        assert record.outcome is not None
        assert record.outcome.startswith("unreadable")
