"""SMS acceptance: a 500-recipient campaign through the real planner and dispatcher to the sandbox SMSC.

Long Vietnamese texts must arrive as UCS-2 parts numbered 1..N under one concatenation reference that
reassemble to exactly the rendered text (3GPP TS 23.040 §9.2.3.24.1); unaccented texts go as GSM-7; an
SMSC that throttles (ESME_RTHROTTLED 0x58) slows the sending down but loses and duplicates nothing.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from broadcaster.db.models import Chunk
from channels.sandbox.smsc import SmscBehaviour
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.workdir_files import citizens

RECIPIENTS = 500
# ~170 Vietnamese characters with diacritics: UCS-2, 3 parts of at most 67 characters.
LONG_SMS = (
    "Kính gửi {{ contact.full_name }}: từ ngày {{ vars.ngay }}, Sở Khoa học và Công nghệ tiếp nhận hồ sơ "
    "thủ tục {{ vars.thu_tuc }} trực tuyến tại dichvucong.danang.gov.vn. Hỏi đáp: 1022."
)
SHORT_SMS = "{{ org.short_name }}: thu tuc {{ vars.thu_tuc }} nhan truc tuyen tu {{ vars.ngay }}."


def sms_only(pipeline: Pipeline, *, text: str, unaccented: bool) -> str:
    return pipeline.approved_campaign(
        channels={"sms": {"template": "sms/thu-nghiem", "provider": "sms_main", "unaccented": unaccented}},
        sms_text=text,
    )


def settle(pipeline: Pipeline, run_id: int, *, rounds: int = 10) -> None:
    """Move the clock past every back-off and let the tick re-enqueue, until nothing is queued or sending."""
    for _ in range(rounds):
        counts = pipeline.counts(run_id)
        if not counts[("sms", "queued")] and not counts[("sms", "sending")]:
            return
        pipeline.advance(minutes=31)
        pipeline.tick()
        pipeline.drain()
    raise AssertionError(f"run {run_id} still has work after {rounds} rounds: {pipeline.counts(run_id)}")


def test_long_vietnamese_sms_to_500_recipients_arrive_as_numbered_ucs2_parts(
    make_pipeline: PipelineFactory,
) -> None:
    # Receipts a little after the answer, as carriers send them (receipts that beat the answer: test_receipts).
    pipeline = make_pipeline(smsc=SmscBehaviour(receipt_delay=0.3))
    pipeline.add_contacts(citizens(RECIPIENTS))
    campaign_id = sms_only(pipeline, text=LONG_SMS, unaccented=False)

    run_id = pipeline.send(campaign_id)

    rows = pipeline.messages(run_id)
    assert len(rows) == RECIPIENTS
    assert all(row.encoding == "ucs2" and row.segments == 3 for row in rows)
    counts = pipeline.wait_for_statuses(run_id, {("sms", "delivered"): RECIPIENTS}, timeout=60)
    assert counts == {("sms", "delivered"): RECIPIENTS}
    rows = pipeline.messages(run_id)

    messages = pipeline.smsc.reassembled()
    assert len(messages) == RECIPIENTS  # one message per recipient, nothing twice
    by_destination = {m.destination: m for m in messages}
    assert len(by_destination) == RECIPIENTS
    for row in rows:
        message = by_destination[row.address.lstrip("+")]
        assert message.complete, message
        assert message.total == 3
        assert [p.udh_number for p in message.parts] == [1, 2, 3]
        assert {p.data_coding for p in message.parts} == {0x08}  # UCS-2 (SMPP v3.4 §5.2.19)
        assert {p.esm_class & 0x40 for p in message.parts} == {0x40}  # UDHI set
        assert all(len(p.text) <= 67 for p in message.parts)
        assert message.text == row.body
        assert message.parts[0].source == "SKHCN"
        assert row.body.startswith("Kính gửi ")
        assert row.parts_total == 3
        assert row.parts_delivered == 3
    assert "Kính gửi Nguyễn Minh Hoàng 10: từ ngày" in by_destination["84912000010"].text


def test_unaccented_sms_go_as_single_gsm7_parts(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(20))
    campaign_id = sms_only(pipeline, text=SHORT_SMS, unaccented=True)

    run_id = pipeline.send(campaign_id)

    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 20})
    accepted = pipeline.smsc.accepted
    assert len(accepted) == 20
    assert {(r.data_coding, r.udh_total) for r in accepted} == {(0x00, None)}
    assert {r.text for r in accepted} == {
        "SKHCN: thu tuc cap doi giay phep lai xe nhan truc tuyen tu 01/07/2025."
    }


def test_a_throttling_smsc_slows_sending_and_loses_nothing(make_pipeline: PipelineFactory) -> None:
    # Every 5th submit_sm gets ESME_RTHROTTLED; some messages exhaust the adapter's own retries and come back
    # to the engine as Throttled, which defers them with not_before. The clock then moves past the back-off.
    pipeline = make_pipeline(smsc=SmscBehaviour(throttle_every=5), sms={"throttle_retries": 1})
    people = 100
    pipeline.add_contacts(citizens(people))
    campaign_id = sms_only(pipeline, text=LONG_SMS, unaccented=False)

    run_id = pipeline.send(campaign_id)
    deferred = [m for m in pipeline.messages(run_id) if m.status.value == "queued"]
    settle(pipeline, run_id)

    counts = pipeline.wait_for_statuses(run_id, {("sms", "delivered"): people}, timeout=60)
    assert counts == {("sms", "delivered"): people}
    submits = pipeline.smsc.submits
    throttled = [s for s in submits if s.status == 0x58]
    assert throttled, "the SMSC never throttled: the test proves nothing"
    assert deferred, "no message was handed back to the engine: the back-off path was not exercised"
    # Nothing lost: every recipient's three parts were accepted and reassemble to the rendered text.
    complete = {m.destination: m for m in pipeline.smsc.reassembled() if m.complete}
    rows = pipeline.messages(run_id)
    assert {row.address.lstrip("+") for row in rows} == set(complete)
    assert all(complete[row.address.lstrip("+")].text == row.body for row in rows)
    # Nothing duplicated: no part is accepted twice, not even of a message refused part-way.
    accepted_per_destination = Counter(s.destination for s in pipeline.smsc.accepted)
    assert set(accepted_per_destination.values()) == {3}


def test_a_throttled_window_pauses_the_dispatcher_on_the_engines_clock(
    make_pipeline: PipelineFactory,
) -> None:
    """The SMSC asks for 30 s (every PDU throttled, no retries in the adapter): the dispatcher pauses for at
    most 5 s, on the engine's clock, so the test's clock moves instead of the test waiting."""
    pipeline = make_pipeline(
        smsc=SmscBehaviour(throttle_every=1),
        sms={"throttle_retries": 0, "throttle_backoff_max": 30.0},
        delivery={"retry_backoff": [600.0] * 8},
    )
    pipeline.add_contacts(citizens(3))
    campaign_id = sms_only(pipeline, text="Thông báo", unaccented=False)
    before = pipeline.clock.now()

    run_id = pipeline.send(campaign_id)

    assert pipeline.clock.slept == [5.0]
    assert (pipeline.clock.now() - before).total_seconds() >= 5.0
    assert pipeline.counts(run_id) == {("sms", "queued"): 3}  # deferred, waiting out the back-off


def test_a_part_throttled_past_the_retries_is_resent_alone_under_its_reference(
    make_pipeline: PipelineFactory,
) -> None:
    """At 33 % throttling with no retries in the adapter, messages fail part-way: the SMSC accepted some parts
    and refused others. Each retry sends only the parts not accepted, under the message's first reference, so
    each recipient's message reassembles exactly once, with no orphan and no duplicate part (issue 9, item 4)."""
    pipeline = make_pipeline(
        smsc=SmscBehaviour(throttle_every=3),
        sms={"throttle_retries": 0},
        delivery={"retry_backoff": [30.0] * 8},
    )
    people = 60
    pipeline.add_contacts(citizens(people))
    campaign_id = sms_only(pipeline, text=LONG_SMS, unaccented=False)

    run_id = pipeline.send(campaign_id)
    first_try = pipeline.smsc.submits
    refused = {s.destination for s in first_try if s.status == 0x58}
    assert refused & {s.destination for s in first_try if s.status == 0}, (
        "no message was accepted part-way: the test proves nothing"
    )
    settle(pipeline, run_id, rounds=12)

    accepted = Counter((s.destination, s.udh_reference, s.udh_number) for s in pipeline.smsc.accepted)
    assert set(accepted.values()) == {1}, "a part was accepted twice"
    parts: dict[str, list[tuple[int | None, int | None]]] = {}
    for destination, reference, number in accepted:
        parts.setdefault(destination, []).append((reference, number))
    rows = pipeline.messages(run_id)
    assert set(parts) == {row.address.lstrip("+") for row in rows}
    for destination, got in parts.items():
        assert len({reference for reference, _ in got}) == 1, f"{destination}: parts under two references"
        assert sorted(number or 0 for _, number in got) == [1, 2, 3]
    whole = pipeline.smsc.reassembled()
    assert len(whole) == people
    assert all(m.complete for m in whole)
    assert {m.destination: m.text for m in whole} == {row.address.lstrip("+"): row.body for row in rows}
    counts = pipeline.wait_for_statuses(run_id, {("sms", "delivered"): people}, timeout=60)
    assert counts == {("sms", "delivered"): people}
    assert all(row.parts_total == 3 and row.parts_delivered == 3 for row in pipeline.messages(run_id))


def test_an_smpp_provider_cuts_chunks_of_its_own_size(make_pipeline: PipelineFactory) -> None:
    """``chunk_size`` under the provider overrides ``[delivery] chunk_size`` (200 here) for its messages."""
    pipeline = make_pipeline(sms={"chunk_size": 300})
    pipeline.add_contacts(citizens(RECIPIENTS))
    campaign_id = sms_only(pipeline, text=SHORT_SMS, unaccented=True)

    run_id = pipeline.send(campaign_id)

    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): RECIPIENTS}, timeout=60)
    with pipeline.context.readers() as session:
        sizes = sorted(session.scalars(select(Chunk.size).where(Chunk.run_id == run_id)))
    assert sizes == [200, 300]
