"""Messages, contacts, consent and reports through the REST API: the CLI's services, its masking and roles."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from broadcaster.context import AppContext
from broadcaster.db.models import Contact, Message
from broadcaster.vocabulary import MessageStatus, Role
from tests.broadcaster.conftest import FIXTURES
from tests.broadcaster.pending_messages import pending
from tests.broadcaster.web.api.conftest import MakeKey, bearer

PHONE = "+84905123456"


def _messages(context: AppContext, count: int) -> list[int]:
    return [pending(context, f"+8490512345{n}", campaign_id=None, key=f"t{n}") for n in range(count)]


def test_messages_pages_newest_first_with_a_cursor(
    api: TestClient, make_key: MakeKey, context: AppContext
) -> None:
    ids = _messages(context, 5)
    key = make_key(Role.EDITOR)
    first = api.get("/api/v1/messages", params={"limit": 2}, headers=bearer(key)).json()
    assert [m["id"] for m in first["messages"]] == ids[::-1][:2]
    second = api.get(
        "/api/v1/messages", params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(key)
    ).json()
    assert [m["id"] for m in second["messages"]] == ids[::-1][2:4]
    assert first["messages"][0]["address"] == "+84905123454"  # an editor sees the address as stored


def test_messages_are_masked_for_auditors_and_filtered(
    api: TestClient, make_key: MakeKey, context: AppContext
) -> None:
    _messages(context, 3)
    page = api.get("/api/v1/messages", headers=bearer(make_key(Role.AUDITOR))).json()
    assert page["messages"]
    assert all("*" in m["address"] for m in page["messages"])
    assert page["next_cursor"] is None
    none = api.get(
        "/api/v1/messages", params={"status": "delivered"}, headers=bearer(make_key(Role.EDITOR))
    ).json()
    assert none["messages"] == []
    bad = api.get(
        "/api/v1/messages", params={"recipient": "khong-phai-so"}, headers=bearer(make_key(Role.EDITOR))
    )
    assert bad.status_code == 400
    assert bad.json()["field"] == "recipient"


def test_a_bound_key_must_name_its_campaign(api: TestClient, make_key: MakeKey) -> None:
    bound = make_key(Role.EDITOR, campaigns=["mot"])
    assert api.get("/api/v1/messages", headers=bearer(bound)).status_code == 422
    assert api.get("/api/v1/messages", params={"campaign": "hai"}, headers=bearer(bound)).status_code == 404
    assert api.get("/api/v1/messages", params={"campaign": "mot"}, headers=bearer(bound)).status_code == 200


def test_exports_are_streamed_and_masked_for_every_role(
    api: TestClient, make_key: MakeKey, context: AppContext
) -> None:
    _messages(context, 3)
    key = make_key(Role.EDITOR)
    csv = api.get("/api/v1/messages/export", params={"format": "csv"}, headers=bearer(key))
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("id,campaign")
    assert len(lines) == 4
    assert "+84905123450" not in csv.text
    jsonl = api.get("/api/v1/messages/export", params={"format": "jsonl"}, headers=bearer(key))
    records = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)
    assert all("*" in r["address"] for r in records)


def test_contacts_import_gives_the_row_report_once(
    api: TestClient, make_key: MakeKey, context: AppContext
) -> None:
    key = make_key(Role.EDITOR)
    data = (FIXTURES / "danh-ba.csv").read_bytes()
    headers = bearer(key, **{"Idempotency-Key": "nhap-1"})
    files = {"file": ("danh-ba.csv", data, "text/csv")}
    first = api.post("/api/v1/contacts/import", files=files, headers=headers)
    assert first.status_code == 201, first.text
    report = first.json()
    assert report["created"] > 0
    assert report["problems"]
    assert {"row", "column", "reason"} <= report["problems"][0].keys()
    again = api.post("/api/v1/contacts/import", files=files, headers=headers)
    assert again.json() == report
    with context.readers() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == report["created"]
    refused = api.post("/api/v1/contacts/import", files=files, headers=bearer(make_key(Role.AUDITOR)))
    assert refused.status_code == 403


def test_a_file_the_importer_cannot_read_is_a_400_naming_the_file(api: TestClient, make_key: MakeKey) -> None:
    files = {"file": ("danh-ba.xls", b"not excel", "application/vnd.ms-excel")}
    response = api.post("/api/v1/contacts/import", files=files, headers=bearer(make_key(Role.EDITOR)))
    assert response.status_code == 400
    assert response.json()["field"] == "file"


def test_upsert_checks_each_row_as_the_importer_does(
    api: TestClient, make_key: MakeKey, context: AppContext
) -> None:
    body = [
        {"external_id": "X-1", "full_name": "Nguyễn Văn An", "phone": "0905 123 456", "segment": "citizen"},
        {"external_id": "X-2", "full_name": "Sai Số", "phone": "0123"},
    ]
    response = api.post("/api/v1/contacts/upsert", json=body, headers=bearer(make_key(Role.EDITOR)))
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["created"] == 1
    assert report["skipped"] == 1
    assert [p["row"] for p in report["problems"]] == [3]
    body[0]["district"] = "Hải Châu"
    updated = api.post("/api/v1/contacts/upsert", json=body[:1], headers=bearer(make_key(Role.EDITOR)))
    assert updated.json()["updated"] == 1
    with context.readers() as session:
        stored = session.scalar(select(Contact).where(Contact.external_id == "X-1"))
    assert stored is not None
    assert stored.district == "Hải Châu"
    assert stored.phone == PHONE


def test_consent_withdrawal_stops_pending_messages(
    api: TestClient, make_key: MakeKey, context: AppContext
) -> None:
    message = pending(context, PHONE)
    body = {"address": "0905 123 456", "purpose": "public_information", "reason": "Gọi điện yêu cầu"}
    assert (
        api.post("/api/v1/consent/withdraw", json=body, headers=bearer(make_key(Role.AUDITOR))).status_code
        == 403
    )
    response = api.post("/api/v1/consent/withdraw", json=body, headers=bearer(make_key(Role.EDITOR)))
    assert response.status_code == 201, response.text
    assert response.json() == {
        "channel": "sms",
        "address": PHONE,
        "purpose": "public_information",
        "stopped_messages": 1,
    }
    with context.readers() as session:
        stored = session.get(Message, message)
    assert stored is not None
    assert stored.status != MessageStatus.QUEUED
    unknown = api.post(
        "/api/v1/consent/withdraw",
        json={**body, "purpose": "khong-co"},
        headers=bearer(make_key(Role.EDITOR)),
    )
    assert unknown.status_code == 400
    assert unknown.json()["field"] == "purpose"


def test_reports_are_the_cli_documents(api: TestClient, make_key: MakeKey) -> None:
    key = make_key(Role.AUDITOR)
    response = api.post("/api/v1/reports", json={"period": "2025-H1", "format": "csv"}, headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "2025" in response.headers["content-disposition"]
    assert response.content
    missing = api.post("/api/v1/reports", json={"format": "csv"}, headers=bearer(key))
    assert missing.status_code == 422
    assert missing.json()["field"] == "period"
    bad = api.post("/api/v1/reports", json={"period": "2025-H3"}, headers=bearer(key))
    assert bad.status_code == 400
    assert bad.json()["field"] == "period"
    approver = api.post(
        "/api/v1/reports", json={"period": "2025-H1"}, headers=bearer(make_key(Role.APPROVER))
    )
    assert approver.status_code == 403
