"""The campaign operations of the REST API: validate, load (idempotent), the review, send, states, status."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, CampaignRun, CampaignVersion
from broadcaster.vocabulary import Role
from tests.broadcaster.web.api.conftest import CAMPAIGN, MakeKey, bearer, campaign_text


def _load(api: TestClient, key: str, body: dict[str, object], **headers: str) -> dict[str, object]:
    response = api.post("/api/v1/campaigns/load", json=body, headers=bearer(key, **headers))
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


def test_validate_reports_line_accurate_problems_and_stores_nothing(
    api: TestClient, make_key: MakeKey, workdir: Path, context: AppContext
) -> None:
    key = make_key(Role.AUDITOR)
    good = api.post("/api/v1/campaigns/validate", json=campaign_text(workdir), headers=bearer(key))
    assert good.status_code == 200, good.text
    assert good.json()["valid"] is True
    assert good.json()["id"] == CAMPAIGN

    body = campaign_text(workdir)
    body["campaign"] = str(body["campaign"]).replace("provider: sms_main", "provider: khong_co")
    bad = api.post("/api/v1/campaigns/validate", json=body, headers=bearer(key))
    assert bad.json()["valid"] is False
    problem = bad.json()["problems"][0]
    assert problem["file"] == "campaign.yaml"
    assert problem["field"] == "channels.sms.provider"
    assert isinstance(problem["line"], int)
    assert problem["line"] > 1
    with context.readers() as session:
        assert session.scalar(select(func.count()).select_from(CampaignVersion)) == 0


def test_template_paths_outside_the_folder_are_refused(
    api: TestClient, make_key: MakeKey, workdir: Path
) -> None:
    body = campaign_text(workdir)
    body["templates"] = {"../../etc/x.txt.j2": "hi"}
    response = api.post("/api/v1/campaigns/validate", json=body, headers=bearer(make_key(Role.EDITOR)))
    assert response.status_code == 400
    assert response.json()["field"] == "templates"


def test_load_is_idempotent_and_a_different_body_under_the_same_key_is_refused(
    api: TestClient, make_key: MakeKey, workdir: Path, context: AppContext
) -> None:
    key = make_key(Role.EDITOR)
    body = campaign_text(workdir)
    first = api.post("/api/v1/campaigns/load", json=body, headers=bearer(key, **{"Idempotency-Key": "k1"}))
    again = api.post("/api/v1/campaigns/load", json=body, headers=bearer(key, **{"Idempotency-Key": "k1"}))
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    changed = campaign_text(workdir, sms_text="Noi dung khac {{ vars.ngay }}")
    other = api.post("/api/v1/campaigns/load", json=changed, headers=bearer(key, **{"Idempotency-Key": "k1"}))
    assert other.status_code == 422
    assert other.json()["field"] == "Idempotency-Key"
    with context.readers() as session:
        assert session.scalar(select(func.count()).select_from(CampaignVersion)) == 1


def test_an_invalid_campaign_loads_nothing(
    api: TestClient, make_key: MakeKey, workdir: Path, context: AppContext
) -> None:
    body = campaign_text(workdir)
    body["campaign"] = str(body["campaign"]).replace("purpose: public_information", "purpose: 42")
    response = api.post("/api/v1/campaigns/load", json=body, headers=bearer(make_key(Role.EDITOR)))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "purpose"
    assert response.json()["problems"][0]["line"] > 1
    with context.readers() as session:
        assert session.scalar(select(func.count()).select_from(CampaignVersion)) == 0


def test_review_send_and_states_through_the_api(
    api: TestClient,
    make_key: MakeKey,
    workdir: Path,
    context: AppContext,
    contacts: ImportReport,
    planned: list[int],
) -> None:
    editor, approver = make_key(Role.EDITOR), make_key(Role.APPROVER)
    loaded = _load(api, editor, campaign_text(workdir))
    submitted = api.post(f"/api/v1/campaigns/{CAMPAIGN}/submit", json={}, headers=bearer(editor))
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"

    no_hash = api.post(f"/api/v1/campaigns/{CAMPAIGN}/approve", json={}, headers=bearer(approver))
    assert no_hash.status_code == 422
    assert no_hash.json()["field"] == "content_hash"
    by_editor = api.post(
        f"/api/v1/campaigns/{CAMPAIGN}/approve",
        json={"content_hash": loaded["content_hash"]},
        headers=bearer(editor),
    )
    assert by_editor.status_code == 403
    approved = api.post(
        f"/api/v1/campaigns/{CAMPAIGN}/approve",
        json={"content_hash": loaded["content_hash"]},
        headers=bearer(approver),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"

    sent = api.post(
        f"/api/v1/campaigns/{CAMPAIGN}/send", json={}, headers=bearer(editor, **{"Idempotency-Key": "s1"})
    )
    assert sent.status_code == 201, sent.text
    replay = api.post(
        f"/api/v1/campaigns/{CAMPAIGN}/send", json={}, headers=bearer(editor, **{"Idempotency-Key": "s1"})
    )
    assert replay.json()["run_id"] == sent.json()["run_id"]
    assert planned == [sent.json()["run_id"]]
    with context.readers() as session:
        assert session.scalar(select(func.count()).select_from(CampaignRun)) == 1
        actors = set(session.scalars(select(AuditEntry.actor).where(AuditEntry.subject_id == CAMPAIGN)))
    assert any(actor.startswith("api:") for actor in actors)

    paused = api.post(f"/api/v1/campaigns/{CAMPAIGN}/pause", json={"reason": "thử"}, headers=bearer(approver))
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "paused"
    resumed_by_approver = api.post(f"/api/v1/campaigns/{CAMPAIGN}/resume", json={}, headers=bearer(approver))
    assert resumed_by_approver.status_code == 403
    resumed = api.post(f"/api/v1/campaigns/{CAMPAIGN}/resume", json={}, headers=bearer(editor))
    assert resumed.status_code == 200, resumed.text

    status = api.get(f"/api/v1/campaigns/{CAMPAIGN}/status", headers=bearer(make_key(Role.AUDITOR)))
    assert status.status_code == 200
    assert status.json()["approved_version"] == 1
    assert [run["id"] for run in status.json()["runs"]] == [sent.json()["run_id"]]
    detail = api.get(f"/api/v1/campaigns/{CAMPAIGN}", headers=bearer(editor)).json()
    assert detail["definition"]["id"] == CAMPAIGN
    assert detail["content_hash"] == loaded["content_hash"]

    cancelled = api.post(f"/api/v1/campaigns/{CAMPAIGN}/cancel", json={}, headers=bearer(approver))
    assert cancelled.json()["state"] == "cancelled"
    again = api.post(f"/api/v1/campaigns/{CAMPAIGN}/pause", json={}, headers=bearer(approver))
    assert again.status_code == 409


def test_reject_needs_a_reason_and_is_the_approvers(
    api: TestClient, make_key: MakeKey, workdir: Path, contacts: ImportReport
) -> None:
    editor, approver = make_key(Role.EDITOR), make_key(Role.APPROVER)
    loaded = _load(api, editor, campaign_text(workdir))
    api.post(f"/api/v1/campaigns/{CAMPAIGN}/submit", json={}, headers=bearer(editor))
    body = {"content_hash": loaded["content_hash"], "reason": "Sửa ngày"}
    assert (
        api.post(f"/api/v1/campaigns/{CAMPAIGN}/reject", json=body, headers=bearer(editor)).status_code == 403
    )
    rejected = api.post(f"/api/v1/campaigns/{CAMPAIGN}/reject", json=body, headers=bearer(approver))
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"


def test_a_key_bound_to_another_campaign_gets_404(api: TestClient, make_key: MakeKey, workdir: Path) -> None:
    _load(api, make_key(Role.EDITOR), campaign_text(workdir))
    bound = make_key(Role.EDITOR, campaigns=["chien-dich-khac"])
    listed = api.get("/api/v1/campaigns", headers=bearer(bound))
    assert listed.status_code == 200
    assert listed.json() == []
    for path in (f"/api/v1/campaigns/{CAMPAIGN}", f"/api/v1/campaigns/{CAMPAIGN}/status"):
        assert api.get(path, headers=bearer(bound)).status_code == 404
    assert api.post(f"/api/v1/campaigns/{CAMPAIGN}/submit", json={}, headers=bearer(bound)).status_code == 404
    assert (
        api.post("/api/v1/campaigns/load", json=campaign_text(workdir), headers=bearer(bound)).status_code
        == 404
    )
    unbound = api.get("/api/v1/campaigns", headers=bearer(make_key(Role.AUDITOR))).json()
    assert [c["id"] for c in unbound] == [CAMPAIGN]


def test_an_unknown_campaign_is_a_404_problem(api: TestClient, make_key: MakeKey) -> None:
    response = api.get("/api/v1/campaigns/khong-co/status", headers=bearer(make_key(Role.AUDITOR)))
    assert response.status_code == 404
    assert response.json()["type"] == "urn:broadcaster:problem:not-found"
