"""The auditor's view: a person's messages found through the keyed address hash after retention removed the
address (shown as removed, never as an empty string), exports masked for every role with ``--unmasked`` an
admin's only and audited, and ``broadcaster audit search`` by actor, action, campaign, recipient and period,
listed or exported, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from broadcaster import audit
from broadcaster.audit.hashes import address_hash
from broadcaster.db.models import AuditEntry, Message, RollupDay
from broadcaster.history.query import ADDRESS_REMOVED
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from channels.masking import mask_address
from tests.broadcaster.conftest import ADMIN_LOGIN, database_dump
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.test_subject_requests import BOTH_DATABASES, cli, pipeline
from tests.broadcaster.delivery.workdir_files import EDITOR, UNSUBSCRIBE_SECRET, citizens
from tests.broadcaster.test_cli import Cli, one_line

__all__ = ["cli", "pipeline"]  # the fixtures (SQLite, or PostgreSQL by BOTH_DATABASES), shared

AUDITOR = "kiem_toan"
CAMPAIGN = "thong-bao-thu-nghiem"
PHONE = "+84912000002"  # citizen 2
EMAIL = "cong.dan2@example.vn"


@pytest.fixture
def sent(pipeline: Pipeline) -> int:
    """Three citizens sent one campaign (SMS and e-mail), an auditor added; returns the run id."""
    pipeline.add_contacts(citizens(3))
    run_id = pipeline.send(pipeline.approved_campaign())
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 3})
    pipeline.quiesce()
    with pipeline.context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login=AUDITOR, role=Role.AUDITOR, clock=pipeline.clock)
    return run_id


def keyed(channel: str, address: str) -> str:
    found = address_hash(UNSUBSCRIBE_SECRET, channel, address)
    assert found is not None
    return found


def remove_addresses(pipeline: Pipeline, channel: str, address: str) -> list[int]:
    """What retention leaves of a message: no address, its keyed hash, the moment it was removed."""
    with pipeline.context.sessions.begin() as session:
        ids = list(
            session.scalars(
                select(Message.id).where(Message.channel == channel, Message.address_key == address.lower())
            )
        )
        session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(address="", address_key=None, address_hash=keyed(channel, address),
                    redacted_at=pipeline.clock.now())
        )  # fmt: skip
    assert ids
    return ids


def test_the_masks_have_the_shapes_auditors_are_shown() -> None:
    assert mask_address("+84905123456") == "090****456"
    assert mask_address("nguyen.an@danang.gov.vn") == "n***@danang.gov.vn"


@BOTH_DATABASES
def test_a_persons_messages_are_found_by_keyed_hash_after_retention(
    pipeline: Pipeline, cli: Cli, sent: int
) -> None:
    before = cli.json("messages", "--recipient", "0912 000 002", user=AUDITOR)
    assert [row["address"] for row in before] == ["091****002"]
    removed = remove_addresses(pipeline, "sms", PHONE)
    # Only the hash is left; another spelling of the number still finds the message, once, shown removed.
    after = cli.json("messages", "--recipient", "0912000002", user=AUDITOR)
    assert [(row["id"], row["address"]) for row in after] == [(removed[0], ADDRESS_REMOVED)]
    assert after[0]["status"] == "delivered"
    assert ADDRESS_REMOVED in one_line(cli("messages", "--recipient", "+84 912 000 002", user=EDITOR).stdout)
    # Another person's hash is not a match; the e-mail of the same person is its own address.
    assert cli.json("messages", "--recipient", "0912000003", user=AUDITOR)[0]["address"] == "091****003"
    mails = cli.json("messages", "--recipient", EMAIL.upper(), user=AUDITOR)
    assert [row["address"] for row in mails] == ["c***@example.vn"]


def test_exports_are_masked_for_every_role_and_unmasked_only_for_an_admin(
    pipeline: Pipeline, cli: Cli, sent: int, tmp_path: Path
) -> None:
    # On screen an editor sees the addresses as stored; a file leaves the installation masked.
    assert PHONE in {row["address"] for row in cli.json("messages", user=EDITOR)}
    for user in (EDITOR, AUDITOR, ADMIN_LOGIN):
        exported = cli("messages", "--format", "csv", user=user).stdout
        rows = list(csv.DictReader(io.StringIO(exported)))
        assert len(rows) == 6
        assert "091****002" in {row["address"] for row in rows}
        assert "912000002" not in exported
        assert "cong.dan2@" not in exported
    out = tmp_path / "xuat"
    out.mkdir()
    for user in (EDITOR, AUDITOR):
        database = database_dump(pipeline.context.engine)
        target = out / f"{user}.jsonl"
        refused = cli(
            "messages", "--format", "jsonl", "--out", str(target), "--unmasked", user=user, expect=1
        )
        assert "'personal_data.unmasked' needs one of: admin" in one_line(refused.stderr)
        assert not target.exists()
        assert list(out.iterdir()) == []  # no partial file either
        assert database_dump(pipeline.context.engine) == database
    full = out / "day-du.jsonl"
    cli("messages", "--format", "jsonl", "--out", str(full), "--unmasked", "--campaign", CAMPAIGN)
    assert PHONE in {json.loads(line)["address"] for line in full.read_text(encoding="utf-8").splitlines()}
    with pipeline.context.readers() as session:
        (entry,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "personal_data.unmasked")
        ).all()
    assert (entry.actor, entry.details["shown"], entry.details["filters"]["campaign"]) == (
        ADMIN_LOGIN,
        6,
        CAMPAIGN,
    )


def record(pipeline: Pipeline, **fields: Any) -> None:
    with pipeline.context.sessions.begin() as session:
        audit.record(session, at=pipeline.clock.now(), **fields)


def found(cli: Cli, *options: str) -> list[dict[str, Any]]:
    lines = cli("audit", "search", "--format", "jsonl", *options, user=AUDITOR).stdout.splitlines()
    return [json.loads(line) for line in lines]


@BOTH_DATABASES
def test_audit_search_by_actor_action_campaign_recipient_and_period(
    pipeline: Pipeline, cli: Cli, sent: int, tmp_path: Path
) -> None:
    phone, mail = keyed("sms", PHONE), keyed("email", EMAIL)
    other = keyed("sms", "+84912000003")
    pipeline.advance(days=2)
    record(pipeline, actor="engine", action="delivery.window", subject_type="run", subject_id=sent,
           details={"campaign": CAMPAIGN, "messages": [[1, "sent", phone, "c" * 64], [2, "sent", other, "c" * 64]]})  # fmt: skip
    record(pipeline, actor="engine", action="delivery.results", subject_type="run", subject_id=sent,
           details={"campaign": f"{CAMPAIGN}-2", "messages": [[3, "delivered", other, "c" * 64]]})  # fmt: skip
    record(pipeline, actor=ADMIN_LOGIN, action="subject.export", subject_type="address", subject_id=mail,
           reason="yêu cầu HS-7")  # fmt: skip
    everything = found(cli)
    assert [e["id"] for e in everything] == sorted(e["id"] for e in everything)  # oldest first
    with pipeline.context.readers() as session:
        assert len(everything) == session.scalar(select(func.count()).select_from(AuditEntry))

    by_editor = found(cli, "--actor", EDITOR)
    assert by_editor
    assert {e["actor"] for e in by_editor} == {EDITOR}
    assert [e["action"] for e in found(cli, "--action", "subject.export")] == ["subject.export"]
    family = {e["action"] for e in found(cli, "--action", "campaign.")}
    assert {"campaign.submit", "campaign.approve"} <= family
    assert all(action.startswith("campaign.") for action in family)
    assert {e["action"] for e in found(cli, "--action", "delivery.")} == {
        "delivery.window",
        "delivery.results",
    }

    # The campaign: entries about it, and entries whose details name it (never a longer id).
    about = found(cli, "--campaign", CAMPAIGN)
    assert "delivery.window" in {e["action"] for e in about}
    assert "delivery.results" not in {e["action"] for e in about}
    assert {e["action"] for e in about} >= {"campaign.submit", "campaign.approve"}
    assert all(e["subject_id"] == CAMPAIGN or e["action"] == "delivery.window" for e in about)

    # A person, typed in any spelling: the entries carrying the keyed hash of that address — the engine's own
    # window entry of the send and the ones recorded here.
    mine = found(cli, "--recipient", "0912 000 002")
    assert {(e["action"], e["actor"].partition("@")[0]) for e in mine} == {
        ("delivery.window", "outbox"),
        ("delivery.window", "engine"),
    }
    assert {e["action"] for e in found(cli, "--recipient", EMAIL.upper())} == {
        "delivery.window",
        "subject.export",
    }
    assert found(cli, "--recipient", "0912000009") == []  # nobody sent anything
    assert {e["action"] for e in found(cli, "--recipient", "0912000003")} == {
        "delivery.window",
        "delivery.results",
    }

    # The period, in Da Nang dates: the three entries recorded two days later.
    later = (pipeline.clock.now() + timedelta(hours=7)).date().isoformat()
    assert [e["action"] for e in found(cli, "--from", later)] == [
        "delivery.window", "delivery.results", "subject.export",
    ]  # fmt: skip
    before = {(e["action"], e["actor"]) for e in found(cli, "--to", "2025-06-02")}
    assert ("delivery.window", "engine") not in before
    assert "subject.export" not in {action for action, _actor in before}
    assert len(found(cli, "--limit", "2")) == 2

    # The table (newest first) and a CSV file.
    table = one_line(cli("audit", "search", "--recipient", EMAIL, user=AUDITOR).stdout)
    assert "Audit log" in table
    assert "subject.export" in table
    assert "yêu cầu HS-7" in table
    target = tmp_path / "nhat-ky.csv"
    said = cli(
        "audit", "search", "--action", "delivery.", "--from", later, "--format", "csv", "--out", str(target),
        user=AUDITOR,
    )  # fmt: skip
    assert "Exported 2 audit log entries" in one_line(said.stdout)
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [row["action"] for row in rows] == ["delivery.window", "delivery.results"]
    assert json.loads(rows[0]["details"])["campaign"] == CAMPAIGN
    assert rows[0]["at"].endswith("+07:00")


def test_audit_search_refuses_bad_input_and_writes_nothing(cli: Cli, sent: int, tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    for options, expected in (
        (["--out", str(target)], "--out: only with --format"),
        (["--limit", "0"], "--limit 0"),
        (["--from", "2025-06-05", "--to", "2025-06-01"], "must be before --to"),
        (["--from", "hôm qua"], "--from 'hôm qua'"),
        (["--recipient", "0912"], "--recipient '0912'"),
    ):
        refused = cli("audit", "search", *options, user=AUDITOR, expect=1)
        assert expected in one_line(refused.stderr)
    assert not target.exists()


def test_an_auditors_report_is_computed_and_not_stored(
    pipeline: Pipeline, cli: Cli, sent: int, tmp_path: Path
) -> None:
    period = ["--from", "2025-06-01", "--to", "2025-06-30"]
    database = database_dump(pipeline.context.engine)
    cli("report", *period, "--out", str(tmp_path / "kiem-toan.csv"), user=AUDITOR)
    assert database_dump(pipeline.context.engine) == database
    with pipeline.context.readers() as session:
        assert session.scalar(select(func.count()).select_from(RollupDay)) == 0
    # The same figures an editor gets, whose report stores the rollups.
    cli("report", *period, "--out", str(tmp_path / "bien-tap.csv"), user=EDITOR)
    with pipeline.context.readers() as session:
        assert (session.scalar(select(func.count()).select_from(RollupDay)) or 0) > 0
    auditor_report = (tmp_path / "kiem-toan.csv").read_text(encoding="utf-8")
    assert auditor_report == (tmp_path / "bien-tap.csv").read_text(encoding="utf-8")
    assert "6" in auditor_report
