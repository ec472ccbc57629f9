"""Delivery receipts from the sandbox SMSC through the adapter's reader thread into message statuses.

Receipts that beat the stored submit_sm_resp, come twice, name ids we never issued, use the other number base,
or carry only TLVs must all end in the right state (SMPP v3.4 Appendix B, §5.3.2.12 receipted_message_id).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from broadcaster.db.models import AuditEntry, InboundRecord, MessagePart
from broadcaster.suppressing import SUPPRESS_ACTION
from channels.masking import mask_phone
from channels.sandbox.smsc import SmscBehaviour
from consent.models import Suppression
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_sms_delivery import LONG_SMS, sms_only
from tests.broadcaster.delivery.workdir_files import citizens

PEOPLE = 40


def unprocessed(pipeline: Pipeline) -> list[InboundRecord]:
    with pipeline.context.readers() as session:
        return list(session.scalars(select(InboundRecord).where(InboundRecord.processed_at.is_(None))))


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(SmscBehaviour(receipt_delay=0.0), id="receipt-before-resp-is-stored"),
        pytest.param(
            SmscBehaviour(message_id_style="decimal", receipt_id_form="hex"), id="decimal-id-hex-receipt"
        ),
        pytest.param(
            SmscBehaviour(message_id_style="hex", receipt_id_form="decimal"), id="hex-id-decimal-receipt"
        ),
        pytest.param(SmscBehaviour(receipt_style="tlv", vendor_tlv=True), id="tlv-only"),
        pytest.param(SmscBehaviour(receipt_style="text", vendor_tlv=False), id="text-only"),
    ],
)
def test_every_part_receipt_settles_its_message(
    make_pipeline: PipelineFactory, behaviour: SmscBehaviour
) -> None:
    pipeline = make_pipeline(smsc=behaviour)
    pipeline.add_contacts(citizens(PEOPLE))
    run_id = pipeline.send(sms_only(pipeline, text=LONG_SMS, unaccented=False))

    counts = pipeline.wait_for_statuses(run_id, {("sms", "delivered"): PEOPLE})

    assert counts == {("sms", "delivered"): PEOPLE}
    assert pipeline.event_count(type="delivered") == PEOPLE * 3  # one event per part
    assert not unprocessed(pipeline)
    with pipeline.context.readers() as session:
        states = set(session.scalars(select(MessagePart.state)))
    assert states == {"delivered"}


def test_receipts_that_beat_the_stored_answer_settle_without_an_operator(
    make_pipeline: PipelineFactory,
) -> None:
    # receipt_delay=0: the SMSC sends each receipt right after its submit_sm_resp, before the window's results
    # are committed. Their raw records are stored first and matched once the parts are (after the window or
    # by the tick); none may be lost or closed as unmatched.
    pipeline = make_pipeline(smsc=SmscBehaviour(receipt_delay=0.0))
    pipeline.add_contacts(citizens(PEOPLE))
    run_id = pipeline.send(sms_only(pipeline, text=LONG_SMS, unaccented=False))
    assert pipeline.smsc.wait_until(lambda s: len(s.delivers) >= PEOPLE * 3)
    assert all(d.command_status == 0 for d in pipeline.smsc.delivers)  # every deliver_sm was answered OK

    counts = pipeline.wait_for_statuses(run_id, {("sms", "delivered"): PEOPLE})

    assert counts == {("sms", "delivered"): PEOPLE}
    assert not unprocessed(pipeline)
    with pipeline.context.readers() as session:
        outcomes = set(session.scalars(select(InboundRecord.outcome)))
    assert outcomes == {"delivered"}


def test_duplicate_receipts_count_once(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(smsc=SmscBehaviour(duplicate_receipts=True, receipt_delay=0.05))
    pipeline.add_contacts(citizens(PEOPLE))
    run_id = pipeline.send(sms_only(pipeline, text=LONG_SMS, unaccented=False))
    assert pipeline.smsc.wait_until(lambda s: len(s.delivers) >= PEOPLE * 3 * 2)

    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): PEOPLE})
    pipeline.tick()

    with pipeline.context.readers() as session:
        records = list(session.scalars(select(InboundRecord)))
    assert len(records) == PEOPLE * 3 * 2  # every copy was stored raw and answered
    assert all(r.processed_at is not None for r in records)
    assert pipeline.event_count(type="delivered") == PEOPLE * 3  # but applied once
    assert sum("duplicate" in (r.outcome or "") for r in records) == PEOPLE * 3
    assert pipeline.counts(run_id) == {("sms", "delivered"): PEOPLE}


def test_receipts_for_unknown_ids_are_closed_as_unmatched_after_the_grace(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline(smsc=SmscBehaviour(unknown_id_receipts=True, receipt_delay=0.05))
    pipeline.add_contacts(citizens(10))
    run_id = pipeline.send(sms_only(pipeline, text=LONG_SMS, unaccented=False))
    assert pipeline.smsc.wait_until(lambda s: len(s.delivers) >= 10 * 3 * 2)
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 10})

    strays = unprocessed(pipeline)
    assert len(strays) == 30  # one unknown id after each real receipt; kept for a late part
    pipeline.advance(minutes=11)  # UNMATCHED_AFTER: nothing will ever match them now
    pipeline.tick()

    assert not unprocessed(pipeline)
    with pipeline.context.readers() as session:
        outcomes = [
            r.outcome
            for r in session.scalars(
                select(InboundRecord).where(InboundRecord.id.in_([s.id for s in strays]))
            )
        ]
    assert outcomes == ["unmatched"] * 30
    assert pipeline.counts(run_id) == {("sms", "delivered"): 10}
    assert pipeline.event_count() == 30  # only the real receipts became events


def test_undeliverable_receipt_is_a_permanent_failure(make_pipeline: PipelineFactory) -> None:
    people = citizens(12)
    dead = people[3]["phone"].replace("0", "84", 1)
    pipeline = make_pipeline(smsc=SmscBehaviour(undeliverable=frozenset({dead}), receipt_delay=0.05))
    pipeline.add_contacts(people)
    run_id = pipeline.send(sms_only(pipeline, text=LONG_SMS, unaccented=False))

    counts = pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 11, ("sms", "permanent_failure"): 1})

    assert counts == {("sms", "delivered"): 11, ("sms", "permanent_failure"): 1}
    failed = next(m for m in pipeline.messages(run_id) if m.status.value == "permanent_failure")
    assert failed.address == "+" + dead
    assert failed.reason is not None
    assert "UNDELIV" in failed.reason


def suppressed_sms(pipeline: Pipeline) -> dict[str, str]:
    with pipeline.context.readers() as session:
        return {
            row.address: row.source
            for row in session.execute(select(Suppression.address, Suppression.source))
        }


def suppression_audit(pipeline: Pipeline) -> list[AuditEntry]:
    with pipeline.context.readers() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == SUPPRESS_ACTION)))


@pytest.mark.parametrize(
    ("error", "sms_settings", "suppresses"),
    [
        pytest.param(1, None, True, id="unknown-subscriber-by-default"),
        pytest.param(27, None, False, id="absent-subscriber"),
        pytest.param(27, {"unknown_subscriber_errors": ["027"]}, True, id="provider-setting"),
    ],
)
def test_a_receipt_saying_the_number_does_not_exist_suppresses_it(
    make_pipeline: PipelineFactory, error: int, sms_settings: dict[str, object] | None, suppresses: bool
) -> None:
    people = citizens(6)
    dead = people[2]["phone"].replace("0", "84", 1)
    pipeline = make_pipeline(
        smsc=SmscBehaviour(undeliverable=frozenset({dead}), undeliverable_error=error, receipt_delay=0.05),
        sms=sms_settings,
    )
    pipeline.add_contacts(people)
    run_id = pipeline.send(sms_only(pipeline, text=LONG_SMS, unaccented=False))

    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 5, ("sms", "permanent_failure"): 1})

    if not suppresses:
        assert suppressed_sms(pipeline) == {}
        assert suppression_audit(pipeline) == []
        return
    # three parts, three failed receipts: one suppression, one audit entry
    assert suppressed_sms(pipeline) == {"+" + dead: f"sms_main:UNDELIV err:{error:03d}"}
    [entry] = suppression_audit(pipeline)
    assert entry.subject_id == mask_phone("+" + dead)
    assert entry.details["channel"] == "sms"
