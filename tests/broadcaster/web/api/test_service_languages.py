"""A service's refusal in the API caller's language: the services raise their errors through the catalogue, so
a problem's ``detail`` follows ``Accept-Language`` (vi or en) like its title."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from broadcaster.contacts.importer import ImportReport
from broadcaster.vocabulary import Role
from tests.broadcaster.web.api.conftest import CAMPAIGN, MakeKey, bearer, campaign_text


def test_submitting_a_version_that_is_not_a_draft_is_a_problem_in_either_language(
    api: TestClient, make_key: MakeKey, workdir: Path, contacts: ImportReport
) -> None:
    editor = make_key(Role.EDITOR)
    loaded = api.post("/api/v1/campaigns/load", json=campaign_text(workdir), headers=bearer(editor))
    assert loaded.status_code == 201, loaded.text
    assert (
        api.post(f"/api/v1/campaigns/{CAMPAIGN}/submit", json={}, headers=bearer(editor)).status_code == 200
    )

    answers = {
        language: api.post(
            f"/api/v1/campaigns/{CAMPAIGN}/submit",
            json={},
            headers=bearer(editor, **{"Accept-Language": language}),
        )
        for language in ("vi", "en")
    }
    assert {answer.status_code for answer in answers.values()} == {409}
    assert (
        "đang ở trạng thái đã trình duyệt; chỉ bản nháp mới trình duyệt được"
        in answers["vi"].json()["detail"]
    )
    assert "is submitted; only a draft can be submitted" in answers["en"].json()["detail"]


def test_a_contacts_file_without_a_name_column_is_refused_in_either_language(
    api: TestClient, make_key: MakeKey
) -> None:
    key = make_key(Role.EDITOR)
    data = "Số điện thoại,email\n0905123456,an@example.vn\n".encode()
    answers = {
        language: api.post(
            "/api/v1/contacts/import",
            files={"file": ("danh-ba.csv", data, "text/csv")},
            headers=bearer(key, **{"Accept-Language": language, "Idempotency-Key": f"nhap-{language}"}),
        )
        for language in ("vi", "en")
    }
    assert {answer.status_code for answer in answers.values()} == {400}
    assert "thiếu cột họ tên" in answers["vi"].json()["detail"]
    assert "Chưa nhập gì." in answers["vi"].json()["detail"]
    assert "missing the name column" in answers["en"].json()["detail"]
    assert "Nothing was imported." in answers["en"].json()["detail"]
