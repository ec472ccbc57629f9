"""Data-subject requests end to end: a citizen's data made the ways the engine makes it (a campaign through
the sandbox SMSC and SMTP server with its receipts, SMS replies, staff consent, lists, a bounce), then
``subject export`` holds every kind of record and ``subject erase`` leaves no trace of the address in any text
column of any table, keeps the runs' message counts, and leaves one tombstone and one audit entry.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, String, Text, cast, func, select
from sqlalchemy.orm import Session

from broadcaster.cli import app
from broadcaster.db.migrations_support import target_metadata
from broadcaster.db.models import AuditEntry, InboundRecord, InboxReply, Message
from broadcaster.vocabulary import MessageKind, MessageStatus
from consent.erasure import erased_among, subject_hash
from consent.models import CampaignExclusion, DoNotCallEntry, DoNotCallImport, SubjectErasure
from consent.suppression import suppress
from tests.broadcaster.conftest import ADMIN_LOGIN, database_dump
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.workdir_files import EDITOR, UNSUBSCRIBE_SECRET, citizen, citizens
from tests.broadcaster.test_cli import Cli, one_line
from tests.peers.polling import wait_until

PHONE = "+84389123456"  # citizen 1, imported as the old 11-digit 01689123456 (a warning quotes it)
EMAIL = "cong.dan1@example.vn"
MO_NUMBER = "8088"
# Substrings that betray the number in any spelling (E.164, 84…, 0…, the PDU's hex digits) and the e-mail.
PHONE_TRACES = ("389123456", "1689123456", b"389123456".hex())


def mo(pipeline: Pipeline, text: str) -> None:
    """A reply from the citizen through the SMSC; returns once the gateway stored and applied it."""
    with pipeline.context.readers() as session:
        before = session.scalar(select(func.count()).select_from(InboxReply)) or 0
        done_before = session.scalar(
            select(func.count()).select_from(InboundRecord).where(InboundRecord.processed_at.is_not(None))
        )
    pipeline.smsc.inject_mo(PHONE.lstrip("+"), MO_NUMBER, text)

    def applied() -> bool | None:
        with pipeline.context.readers() as session:
            done = session.scalar(
                select(func.count()).select_from(InboundRecord).where(InboundRecord.processed_at.is_not(None))
            )
        return True if int(done or 0) > int(done_before or 0) else None

    wait_until(applied, timeout=10.0, what=f"the MO {text!r} applied ({before} inbox replies before)")


@pytest.fixture
def citizen_data(pipeline: Pipeline, cli: Cli) -> int:
    """Everything the engine can hold about citizen 1; returns the campaign run's id."""
    pipeline.add_contacts([citizen(1, phone="01689123456"), *citizens(2, first=2)])
    run_id = pipeline.send(pipeline.approved_campaign())
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 3})
    mo(pipeline, "Hủy")  # an opt-out keyword: two withdrawals and one confirmation, queued
    mo(pipeline, "Cho tôi hỏi lịch tiếp dân")  # anything else: the staff inbox
    cli("consent", "grant", "0389 123 456", "--purpose", "advertising", "--notice", "v1",
        "--reason", "ký phiếu, gọi lại 0389123456", user=EDITOR)  # fmt: skip
    cli("campaigns", "test-send", pipeline_campaign(pipeline), "--to", "0389123456", user=EDITOR)
    await_test_delivery(pipeline)  # no receipt may arrive after the erasure
    now = pipeline.clock.now()
    with pipeline.context.sessions.begin() as session:
        (reply_id,) = session.scalars(select(InboxReply.id)).all()
        suppress(
            session, channel="email", address=EMAIL.upper(), reason="550 5.1.1", source="mail:5.1.1", at=now
        )
        suppress(session, channel="sms", address=PHONE, reason="UNDELIV", source="smpp:0x0B", at=now)
        session.add(DoNotCallImport(source_name="dnc.csv", sha256="0" * 64, numbers=1, imported_by="x",
                                    imported_at=now))  # fmt: skip
        session.flush()
        session.add(DoNotCallEntry(phone=PHONE, import_id=1))
        session.add(CampaignExclusion(campaign_id="thong-bao-thu-nghiem", channel="sms", address=PHONE,
                                      list_name="can-bo.csv", added_by=EDITOR, added_at=now))  # fmt: skip
        bounce = (
            f"Final-Recipient: rfc822; Cong.Dan1@Example.VN\nAction: failed\nStatus: 5.1.1\nTo: <{EMAIL}>"
        )
        session.add(InboundRecord(provider="mail", channel="email", received_at=now,
                                  payload={"dsn": bounce, "envelope_to": "bounce@example.vn"},
                                  processed_at=now, outcome="bounced"))  # fmt: skip
    cli("inbox", "done", str(reply_id), "--reason", "đã gọi lại số 0389123456", user=EDITOR)
    pipeline.quiesce()  # under load the SMSC may redeliver a receipt whose answer came late
    return run_id


def await_test_delivery(pipeline: Pipeline) -> None:
    def delivered() -> bool | None:
        pipeline.advance(seconds=5)
        pipeline.tick()
        with pipeline.context.readers() as session:
            status = session.scalar(select(Message.status).where(Message.kind == MessageKind.TEST))
        return True if status == MessageStatus.DELIVERED else None

    wait_until(delivered, timeout=20.0, what="the test SMS delivered")


def pipeline_campaign(pipeline: Pipeline) -> str:
    with pipeline.context.readers() as session:
        return str(
            session.scalars(select(Message.campaign_id).where(Message.campaign_id.is_not(None))).first()
        )


@pytest.fixture
def pipeline(make_pipeline: PipelineFactory, request: pytest.FixtureRequest) -> Pipeline:
    """SQLite unless a test asks for PostgreSQL (the JSON payloads are searched as text in both)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return make_pipeline(database_url=request.getfixturevalue("postgres_url"))
    return make_pipeline()


BOTH_DATABASES = pytest.mark.parametrize(
    "pipeline", ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)], indirect=True
)


@pytest.fixture
def cli(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(monkeypatch)


def traces(session: Session, needles: tuple[str, ...]) -> list[tuple[str, str, Any]]:
    """(table, column, value) of every text or JSON value anywhere that contains one of ``needles``."""
    found: list[tuple[str, str, Any]] = []
    for metadata in target_metadata():
        for table in metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, String | Text | JSON):
                    continue
                text = func.lower(cast(column, Text))
                for needle in needles:
                    hits = (
                        session.execute(select(column).where(text.contains(needle.lower()))).scalars().all()
                    )
                    found.extend((table.name, column.name, hit) for hit in hits)
    return found


def run_counts(pipeline: Pipeline, run_id: int) -> Counter[tuple[str, str]]:
    return pipeline.counts(run_id)


@BOTH_DATABASES
def test_export_holds_every_kind_of_record(pipeline: Pipeline, cli: Cli, citizen_data: int) -> None:
    document = json.loads(cli("subject", "export", "0389.123.456", user=EDITOR).stdout)

    header = document["header"]
    assert (header["generated_by"], header["subject"]) == (EDITOR, {"channel": "sms", "address": PHONE})
    assert datetime.fromisoformat(header["generated_at"]).tzinfo is not None  # the CLI runs on the real clock
    assert [c["email"] for c in document["contacts"]] == [EMAIL]
    assert sorted((e["action"], e["purpose"], e["source"]) for e in document["consent_events"]) == [
        ("grant", "advertising", "staff"),
        ("withdraw", "advertising", "sms_keyword"),
        ("withdraw", "public_information", "sms_keyword"),
    ]
    assert [s["source"] for s in document["suppressions"]] == ["smpp:0x0B"]
    assert [d["phone"] for d in document["do_not_call"]] == [PHONE]
    assert [x["list_name"] for x in document["campaign_exclusions"]] == ["can-bo.csv"]
    kinds = Counter(m["kind"] for m in document["messages"])
    assert kinds == {"campaign": 1, "system": 1, "test": 1}
    (campaign_sms,) = [m for m in document["messages"] if m["kind"] == "campaign"]
    assert campaign_sms["status"] == "delivered"
    assert campaign_sms["body"]
    assert [e["type"] for e in campaign_sms["delivery_events"]] == ["delivered"]
    assert [r["text"] for r in document["inbox_replies"]] == ["Cho tôi hỏi lịch tiếp dân"]
    outcomes = Counter(r["outcome"] for r in document["inbound_records"])
    # Two receipts (the campaign's and the test send's; the SMSC may deliver one again), two replies.
    assert (outcomes["delivered"], outcomes["inbound"]) == (2, 2)
    actions = Counter(a["action"] for a in document["audit_entries"])
    assert actions == {"consent.withdraw": 2, "consent.grant": 1, "inbox.done": 1}
    assert document["erasures"] == []
    (warning,) = document["contact_import_problems"]
    assert (warning["column"], warning["value"]) == ("phone", "01689123456")
    assert list(document) == sorted(document)  # a stable key order

    # The export is audited, naming the person by the keyed hash; no audit entry carries the number.
    with pipeline.context.readers() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "subject.export")).all()
        assert (entry.actor, entry.subject_id) == (EDITOR, subject_hash(UNSUBSCRIBE_SECRET, "sms", PHONE))
        assert [t for t in traces(session, PHONE_TRACES) if t[0] == "audit_log"] == []


def test_export_by_email_any_casing_to_a_file(
    pipeline: Pipeline, cli: Cli, citizen_data: int, tmp_path: Path
) -> None:
    out = tmp_path / "xuat.json"
    result = cli("subject", "export", "Cong.Dan1@EXAMPLE.vn", "--out", str(out), user=ADMIN_LOGIN)
    assert "Wrote" in one_line(result.stderr)
    assert result.stdout == ""
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["header"]["subject"] == {"channel": "email", "address": EMAIL}
    assert [m["channel"] for m in document["messages"]] == ["email"]
    assert [s["reason"] for s in document["suppressions"]] == ["550 5.1.1"]
    assert [r["outcome"] for r in document["inbound_records"]] == ["bounced"]


def test_an_auditor_may_not_export(cli: Cli, citizen_data: int, pipeline: Pipeline) -> None:
    before = database_dump(pipeline.context.engine)
    result = cli("subject", "export", PHONE, user="phe_duyet", expect=1)
    assert "subjects.export" in one_line(result.stderr)
    assert database_dump(pipeline.context.engine) == before


@BOTH_DATABASES
def test_erase_leaves_no_trace_keeps_counts_and_leaves_a_tombstone(
    pipeline: Pipeline, cli: Cli, citizen_data: int
) -> None:
    counts_before = run_counts(pipeline, citizen_data)
    with pipeline.context.readers() as session:
        # The search finds what is there: the number is held in all these tables (and not in the audit log).
        assert {table for table, _column, _value in traces(session, PHONE_TRACES)} == {
            "contacts",
            "contact_imports",
            "messages",
            "inbound_records",
            "inbox_replies",
            "consent_events",
            "suppressions",
            "do_not_call",
            "campaign_exclusions",
        }
        assert {table for table, _column, _value in traces(session, (EMAIL,))} == {
            "contacts",
            "messages",
            "inbound_records",
            "suppressions",
        }
        total_messages = session.scalar(select(func.count()).select_from(Message))

    result = cli("subject", "erase", "0389123456", "--reference", "HS-2026-017", "--yes")
    assert "tombstone no." in one_line(result.stdout)
    cli("subject", "erase", "CONG.DAN1@example.VN", "--reference", "HS-2026-017", "--yes")

    assert run_counts(pipeline, citizen_data) == counts_before
    with pipeline.context.readers() as session:
        assert traces(session, PHONE_TRACES) == []
        assert traces(session, (EMAIL,)) == []
        assert session.scalar(select(func.count()).select_from(Message)) == total_messages
        tombstones = session.scalars(select(SubjectErasure).order_by(SubjectErasure.id)).all()
        assert [(t.reference, t.subject_hash, t.erased_by) for t in tombstones] == [
            ("HS-2026-017", subject_hash(UNSUBSCRIBE_SECRET, "sms", PHONE), ADMIN_LOGIN),
            ("HS-2026-017", subject_hash(UNSUBSCRIBE_SECRET, "email", EMAIL), ADMIN_LOGIN),
        ]
        summary = json.loads(tombstones[0].summary)
        assert summary["contacts"] == 1
        assert summary["consent_events"] == 3
        assert summary["messages"] == 3
        assert summary["contact_import_problems"] == 1
        assert summary["messages_stopped"] == 1  # the opt-out's confirmation, still queued
        erased = session.scalars(select(AuditEntry).where(AuditEntry.action == "subject.erase")).all()
        assert [(a.subject_id, a.reason) for a in erased] == [
            (t.subject_hash, "HS-2026-017") for t in tombstones
        ]
        # The refusal outlives the erasure: planning can recognise the number again.
        assert erased_among(session, secret=UNSUBSCRIBE_SECRET, channel="sms",
                            addresses=[PHONE, "+84912000002"]) == {PHONE}  # fmt: skip
        assert erased_among(session, secret=UNSUBSCRIBE_SECRET, channel="email",
                            addresses=["Cong.Dan1@Example.vn"]) == {"Cong.Dan1@Example.vn"}  # fmt: skip

    # Someone else's data is untouched, and a second erasure finds nothing.
    second = json.loads(cli("subject", "export", "0912000002").stdout)
    assert len(second["contacts"]) == 1
    assert len(second["messages"]) == 1
    before = database_dump(pipeline.context.engine)
    refused = cli("subject", "erase", PHONE, "--reference", "HS-2026-018", "--yes", expect=1)
    assert "nothing is held" in one_line(refused.stderr)
    assert "HS-2026-017" in one_line(refused.stderr)
    assert database_dump(pipeline.context.engine) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0389123456", "--yes"], "--reference is required"),
        (["0389123456", "--reference", "  ", "--yes"], "--reference is required"),
        (["12345", "--reference", "HS-1", "--yes"], "12345"),
        (["an@", "--reference", "HS-1", "--yes"], "an@"),
        (["0389123456", "--reference", "đơn của số 0389123456", "--yes"], "must not contain"),
    ],
)
def test_bad_input_changes_nothing(
    pipeline: Pipeline, cli: Cli, citizen_data: int, args: list[str], message: str
) -> None:
    before = database_dump(pipeline.context.engine)
    result = cli("subject", "erase", *args, expect=1)
    assert message in one_line(result.stderr)
    assert database_dump(pipeline.context.engine) == before


def test_without_a_secret_no_request_is_served(
    pipeline: Pipeline, cli: Cli, citizen_data: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROADCASTER_SECURITY__UNSUBSCRIBE_SECRET", "")
    monkeypatch.setenv("BROADCASTER_SECURITY__SUBJECT_KEY", "")
    before = database_dump(pipeline.context.engine)
    for args in (["export", PHONE], ["erase", PHONE, "--reference", "HS-1", "--yes"]):
        result = cli("subject", *args, expect=1)
        assert "subject_key and unsubscribe_secret are empty" in one_line(result.stderr)
    assert database_dump(pipeline.context.engine) == before


def test_an_editor_may_not_erase_and_a_refused_confirmation_changes_nothing(
    pipeline: Pipeline, cli: Cli, citizen_data: int
) -> None:
    before = database_dump(pipeline.context.engine)
    result = cli("subject", "erase", PHONE, "--reference", "HS-1", "--yes", user=EDITOR, expect=1)
    assert "subjects.erase" in one_line(result.stderr)
    cli.monkeypatch.setattr("getpass.getuser", lambda: ADMIN_LOGIN)
    declined = cli.runner.invoke(app, ["subject", "erase", PHONE, "--reference", "HS-1"], input="n\n")
    assert declined.exit_code == 1
    assert "Cancelled" in one_line(declined.stderr)
    assert "Contacts" in declined.stdout
    assert database_dump(pipeline.context.engine) == before
