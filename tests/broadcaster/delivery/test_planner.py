"""Planning a run: de-duplication per (run, channel, normalised address), opt-outs, landlines and the
suppression list kept as ``suppressed`` rows with their reason, idempotent re-planning, and rendering from the
approved snapshot rather than the files on disk.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import delete, update

from broadcaster.campaigns.audience import Exclusion
from broadcaster.db.bulk import insert_ignoring_conflicts
from broadcaster.db.models import CampaignRun, Message
from broadcaster.outbox import planner
from broadcaster.outbox.page_writer import PageWriter, PlannedPage
from broadcaster.vocabulary import MessageStatus, RunStatus
from consent.suppression import suppress
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import citizen, citizens
from tests.broadcaster.opt_outs import opt_out


def test_two_contacts_with_the_same_phone_get_one_sms(pipeline: Pipeline) -> None:
    twin = citizen(2, phone="+84 912 000 001", external_id="DN-TWIN")  # contact 1's number, written otherwise
    pipeline.add_contacts([citizen(1), twin, citizen(3)])
    campaign_id = pipeline.approved_campaign()
    run_id = pipeline.start_run(campaign_id)

    planned = pipeline.plan(run_id)

    rows = pipeline.messages(run_id)
    assert planned == len(rows) == 5  # 2 SMS + 3 e-mails
    sms = Counter(m.address for m in rows if m.channel == "sms")
    assert sms == {"+84912000001": 1, "+84912000003": 1}
    assert {m.address for m in rows if m.channel == "email"} == {
        c["email"] for c in (citizen(1), twin, citizen(3))
    }
    # One dispatch task per chunk, per channel.
    assert sorted(queue for _chunk, queue in pipeline.enqueuer.chunks) == [
        "send.email.mail",
        "send.sms.sms_main",
    ]


def test_opt_outs_landlines_and_the_suppression_list_become_suppressed_rows_with_a_reason(
    pipeline: Pipeline,
) -> None:
    people = citizens(6)
    people[5]["phone"] = "0236 3822 123"  # a Da Nang landline cannot receive SMS
    pipeline.add_contacts(people)
    with pipeline.context.sessions.begin() as session:
        opt_out(session, "DN-000001", "sms", at=pipeline.clock.now())
        opt_out(session, "DN-000002", "email", at=pipeline.clock.now())
        suppress(
            session,
            channel="email",
            address="cong.dan3@example.vn",
            reason="550 5.1.1",
            source="mail:5.1.1",
            at=pipeline.clock.now(),
        )
    run_id = pipeline.start_run(pipeline.approved_campaign())

    pipeline.plan(run_id)

    rows = {(m.channel, m.address): m for m in pipeline.messages(run_id)}
    expected = {
        ("sms", "+84912000001"): Exclusion.OPTED_OUT,
        ("email", "cong.dan2@example.vn"): Exclusion.OPTED_OUT,
        ("email", "cong.dan3@example.vn"): Exclusion.SUPPRESSED,
        ("sms", "+842363822123"): Exclusion.LANDLINE,
    }
    for key, reason in expected.items():
        assert rows[key].status == MessageStatus.SUPPRESSED, key
        assert rows[key].reason == reason
        assert rows[key].chunk_id is None
        assert rows[key].final_at is not None
    queued = [m for m in rows.values() if m.status == MessageStatus.QUEUED]
    assert len(queued) == 12 - len(expected)

    pipeline.drain()
    counts = pipeline.counts(run_id)
    assert counts[("sms", "suppressed")] == 2
    assert counts[("email", "suppressed")] == 2
    # SMS receipts may already have arrived: sent and delivered both mean the SMSC accepted it.
    assert counts[("sms", "sent")] + counts[("sms", "delivered")] == 4
    assert counts[("email", "sent")] == 4
    assert pipeline.smtp.wait_for_count(4)
    got = {r for mail in pipeline.smtp.received for r in mail.rcpt_tos}
    assert "cong.dan2@example.vn" not in got
    assert "cong.dan3@example.vn" not in got
    assert "84912000001" not in {s.destination for s in pipeline.smsc.submits}


def test_planning_again_after_a_crash_inserts_nothing_twice(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(25))
    run_id = pipeline.start_run(pipeline.approved_campaign())
    first = pipeline.plan(run_id)
    assert first == 50
    assert pipeline.plan(run_id) == 0  # a redelivered plan task for a planned run does nothing

    # The plan task died after its last page but before the run left PLANNING: it runs again from scratch.
    with pipeline.context.sessions.begin() as session:
        session.execute(
            update(CampaignRun)
            .where(CampaignRun.id == run_id)
            .values(status=RunStatus.PLANNING, plan_checkpoint=0)
        )
    assert pipeline.plan(run_id) == first
    rows = pipeline.messages(run_id)
    assert len(rows) == first
    assert len({(m.channel, m.address) for m in rows}) == first


def test_rendering_uses_the_approved_snapshot_even_after_the_file_changed(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(3))
    campaign_id = pipeline.approved_campaign(sms_text="Ban duyet: {{ vars.thu_tuc }}")
    (pipeline.directory / "templates" / "sms" / "thu-nghiem.txt.j2").write_text(
        "CHUA DUYET", encoding="utf-8"
    )
    (pipeline.directory / "templates" / "email" / "thu-nghiem.subject.j2").write_text(
        "CHUA DUYET", encoding="utf-8"
    )

    run_id = pipeline.send(campaign_id)

    rows = pipeline.messages(run_id)
    assert {m.body for m in rows if m.channel == "sms"} == {"Ban duyet: cap doi giay phep lai xe"}
    assert {m.subject for m in rows if m.channel == "email"} == {
        "Thông báo từ 01/07/2025: cấp đổi giấy phép lái xe"
    }
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 3)
    assert {s.text for s in pipeline.smsc.accepted} == {"Ban duyet: cap doi giay phep lai xe"}
    assert pipeline.smtp.wait_for_count(3)
    assert all("CHUA DUYET" not in mail.content.decode("ascii", "replace") for mail in pipeline.smtp.received)


def test_an_address_met_on_an_earlier_page_is_a_duplicate_and_a_resumed_planning_agrees(
    make_pipeline: Any,
) -> None:
    pipeline: Pipeline = make_pipeline(delivery={"plan_page_size": 10})
    twins = [  # pages of 10 contacts: each twin is on a later page than its first contact
        citizen(31, phone="+84 912 000 002", external_id="DN-TWIN-1"),
        citizen(32, email="CONG.DAN5@example.vn", external_id="DN-TWIN-2"),
        citizen(33, phone="0912000015", email="Cong.Dan15@Example.VN", external_id="DN-TWIN-3"),
    ]
    pipeline.add_contacts([*citizens(30), *twins])
    run_id = pipeline.start_run(pipeline.approved_campaign())
    planned = pipeline.plan(run_id)

    rows = pipeline.messages(run_id)
    assert planned == len(rows) == 30 + 30 + 2  # DN-TWIN-1's e-mail and DN-TWIN-2's SMS are their own
    assert {m.contact_id for m in rows if m.address in ("+84912000032", "cong.dan31@example.vn")} == {31, 32}
    assert {m.contact_id for m in rows if m.address in ("+84912000002", "cong.dan5@example.vn")} == {2, 5}
    first = sorted((m.channel, m.address, m.contact_id, m.status) for m in rows)

    # The plan task died after two pages: the planner starts again from the checkpoint.
    with pipeline.context.sessions.begin() as session:
        session.execute(delete(Message).where(Message.run_id == run_id, Message.contact_id > 20))
        session.execute(
            update(CampaignRun)
            .where(CampaignRun.id == run_id)
            .values(status=RunStatus.PLANNING, plan_checkpoint=20)
        )
    pipeline.plan(run_id)
    again = sorted((m.channel, m.address, m.contact_id, m.status) for m in pipeline.messages(run_id))
    assert again == first


def test_a_twin_on_the_next_page_is_a_duplicate_while_the_page_before_is_still_being_written(
    make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer commits a page while the next is screened: the first page's keys must count as planned."""
    pipeline: Pipeline = make_pipeline(delivery={"plan_page_size": 10})
    twin = citizen(11, phone="+84 912 000 003", external_id="DN-TWIN")  # page 2; contact 3 is on page 1
    pipeline.add_contacts([*citizens(10), twin])
    run_id = pipeline.start_run(pipeline.approved_campaign())

    second_page_handed = threading.Event()
    handed: list[int] = []
    real_put, real_write = PageWriter.put, planner._write_page

    def put(writer: PageWriter, page: PlannedPage) -> None:
        real_put(writer, page)
        handed.append(page.to)
        if len(handed) == 2:
            second_page_handed.set()

    def write_page(*args: Any, **kwargs: Any) -> bool:
        if not handed or handed[0] == args[2].to:  # the first page waits until the second was screened
            assert second_page_handed.wait(10)
        return real_write(*args, **kwargs)

    given_and_inserted: list[tuple[int, int]] = []

    def insert(session: Any, table: Any, rows: list[dict[str, Any]], **kwargs: Any) -> int:
        inserted = insert_ignoring_conflicts(session, table, rows, **kwargs)
        given_and_inserted.append((len(rows), inserted))
        return inserted

    monkeypatch.setattr(PageWriter, "put", put)
    monkeypatch.setattr(planner, "_write_page", write_page)
    monkeypatch.setattr(planner, "insert_ignoring_conflicts", insert)
    planned = pipeline.plan(run_id)

    assert handed == [10, 11]
    rows = pipeline.messages(run_id)
    assert planned == len(rows) == 10 + 11  # the twin's own e-mail, not a second SMS to contact 3's phone
    assert {m.contact_id for m in rows if m.address == "+84912000003"} == {3}
    assert given_and_inserted == [(20, 20), (1, 1)]  # the twin's SMS was not handed over to conflict
