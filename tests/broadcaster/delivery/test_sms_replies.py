"""SMS replies through the sandbox SMSC: an opt-out keyword withdraws consent and gets exactly one confirmation
(also when the SMSC delivers the same MO again); any other reply lands in the staff inbox."""

from __future__ import annotations

from sqlalchemy import func, select

from broadcaster.db.models import AuditEntry, InboundRecord, InboxReply, Message
from broadcaster.outbox.inbound import apply_stored
from broadcaster.vocabulary import MessageKind, MessageStatus
from consent import ledger
from consent.keywords import confirmation_sms
from consent.models import ConsentEvent
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.peers.polling import wait_until

SENDER = "84905123456"
NUMBER = "+84905123456"
MO_NUMBER = "8088"


def bound(pipeline: Pipeline) -> None:
    """The gateway's SMPP session is bound, so the SMSC has someone to deliver MO messages to."""
    pipeline.start_engine()
    assert pipeline.adapters is not None
    pipeline.adapters.get("sms_main")
    assert pipeline.smsc.wait_until(lambda s: s.bound_sessions >= 1)


def reply(pipeline: Pipeline, text: str, *, stored_before: int) -> None:
    """The citizen's reply goes through the SMSC; returns once the gateway stored and applied it."""
    pipeline.smsc.inject_mo(SENDER, MO_NUMBER, text)

    def applied() -> bool | None:
        with pipeline.context.readers() as session:
            done = session.scalar(
                select(func.count()).select_from(InboundRecord).where(InboundRecord.processed_at.is_not(None))
            )
        return True if int(done or 0) > stored_before else None

    wait_until(applied, timeout=10.0, what=f"the MO {text!r} applied")


def confirmations(pipeline: Pipeline) -> list[Message]:
    return [m for m in pipeline.messages(channel="sms") if m.kind == MessageKind.SYSTEM]


def sent_to_the_citizen(pipeline: Pipeline) -> list[str]:
    """The texts the SMSC received for the citizen, a long message's parts joined."""
    texts: dict[object, list[tuple[int, str]]] = {}
    for submit in pipeline.smsc.submits:
        if submit.destination.lstrip("+") == SENDER:
            key = submit.udh_reference if submit.udh_total else id(submit)
            texts.setdefault(key, []).append((submit.udh_number or 1, submit.text))
    return ["".join(text for _n, text in sorted(parts)) for parts in texts.values()]


def test_an_opt_out_keyword_withdraws_and_is_confirmed_once(pipeline: Pipeline) -> None:
    bound(pipeline)
    reply(pipeline, "Hủy", stored_before=0)

    with pipeline.context.readers() as session:
        events = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
        assert [(e.channel, e.address, e.purpose, e.action, e.source, e.recorded_by) for e in events] == [
            ("sms", NUMBER, "public_information", "withdraw", "sms_keyword", "sms keyword"),
            ("sms", NUMBER, "advertising", "withdraw", "sms_keyword", "sms keyword"),
        ]
        record_id = session.scalars(select(InboundRecord.id)).one()
        assert all(e.evidence == f"inbound record {record_id}: 'Hủy'" for e in events)
        assert ledger.current(session, "sms", NUMBER, "official_duty") is None
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "consent.withdraw")).all()
        assert [(a.actor, a.subject_id) for a in audited] == [("sms keyword", str(e.id)) for e in events]
        assert session.scalar(select(func.count()).select_from(InboxReply)) == 0
    (confirmation,) = confirmations(pipeline)
    assert (confirmation.address, confirmation.provider, confirmation.status) == (
        NUMBER,
        "sms_main",
        MessageStatus.QUEUED,
    )
    expected = confirmation_sms(pipeline.context.settings.org.short_name)
    assert confirmation.body == expected

    pipeline.tick()  # the normal outbox: the tick cuts a chunk, a sender writes it to the SMSC
    pipeline.drain()
    segments = confirmations(pipeline)[0].segments or 1
    assert pipeline.smsc.wait_until(
        lambda s: len([x for x in s.submits if x.destination.lstrip("+") == SENDER]) >= segments
    )
    assert sent_to_the_citizen(pipeline) == [expected]
    (confirmation,) = confirmations(pipeline)
    assert confirmation.status in (MessageStatus.SENT, MessageStatus.DELIVERED)

    # The SMSC delivers the same MO again: nothing more is recorded, and no second confirmation is sent.
    reply(pipeline, "Hủy", stored_before=1)
    pipeline.tick()
    pipeline.drain()
    with pipeline.context.readers() as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 2
    assert len(confirmations(pipeline)) == 1
    assert sent_to_the_citizen(pipeline) == [expected]


def test_applying_the_same_record_again_queues_nothing_more(pipeline: Pipeline) -> None:
    bound(pipeline)
    reply(pipeline, "  tu  chối. ", stored_before=0)
    with pipeline.context.sessions.begin() as session:
        record = session.scalars(select(InboundRecord)).one()
        record.processed_at = None  # as if a second applier picked it up
    with pipeline.context.sessions.begin() as session:
        apply_stored(session, [record.id], now=pipeline.clock.now())
    assert len(confirmations(pipeline)) == 1


def test_any_other_reply_goes_to_the_inbox(pipeline: Pipeline) -> None:
    bound(pipeline)
    reply(pipeline, "toi muon hoi", stored_before=0)

    with pipeline.context.readers() as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
        (row,) = session.scalars(select(InboxReply)).all()
        record_id = session.scalars(select(InboundRecord.id)).one()
    assert (row.from_number, row.text, row.inbound_id, row.provider, row.handled) == (
        NUMBER,
        "toi muon hoi",
        record_id,
        "sms_main",
        False,
    )
    assert confirmations(pipeline) == []
