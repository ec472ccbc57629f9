"""The campaign actions from the browser: each as a role that may and one that may not, the hash-bound
approval, refusals as pages, send queuing a run, and loading a new version (upload or text areas)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.clock import FrozenClock
from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, CampaignRun
from broadcaster.web.ui import campaign_actions
from tests.broadcaster.web.campaign_setup import (
    CAMPAIGN,
    approve_campaign,
    load_campaign,
    shown_hash,
    state,
    versions,
)
from tests.broadcaster.web.conftest import Browser

Browsers = Callable[[str | None], Browser]
PREVIEW = f"/campaigns/{CAMPAIGN}/versions/1/preview"


@pytest.fixture
def loaded(context: AppContext, workdir: Path, people: object, contacts: ImportReport) -> Path:
    return load_campaign(context, workdir)


class Recorder:
    def __init__(self) -> None:
        self.runs: list[int] = []

    def plan_run(self, run_id: int) -> None:
        self.runs.append(run_id)


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The runs handed to the workers (the broker itself is not needed to see that)."""
    recorder = Recorder()
    monkeypatch.setattr(campaign_actions, "CeleryEnqueuer", lambda: recorder)
    return recorder.runs


def _audit(context: AppContext, action: str) -> list[AuditEntry]:
    with context.readers() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_submit_then_approve_with_the_hash_shown(
    browser: Browsers, loaded: Path, context: AppContext
) -> None:
    editor = browser("bien_tap")
    editor.get(f"/campaigns/{CAMPAIGN}")
    assert browser("kiem_toan").post(f"/campaigns/{CAMPAIGN}/submit").status_code == 403
    submitted = editor.post(f"/campaigns/{CAMPAIGN}/submit")
    assert submitted.status_code == 303
    assert versions(context) == [(1, "submitted")]

    approver = browser("phe_duyet")
    content_hash = shown_hash(approver.get(PREVIEW).text)
    assert editor.post(f"{PREVIEW[:-8]}/approve", {"content_hash": content_hash}).status_code == 403
    approved = approver.post(f"/campaigns/{CAMPAIGN}/versions/1/approve", {"content_hash": content_hash})
    assert approved.status_code == 303
    assert approved.headers["location"] == f"/campaigns/{CAMPAIGN}?done=approved"
    assert versions(context) == [(1, "approved")]
    assert state(context) == "approved"
    assert "Ý kiến phê duyệt của bạn đã được ghi nhận." in approver.get(approved.headers["location"]).text


def test_a_version_loaded_after_the_approver_looked_is_not_approved(
    browser: Browsers, loaded: Path, context: AppContext, workdir: Path
) -> None:
    editor = browser("bien_tap")
    editor.get("/")
    editor.post(f"/campaigns/{CAMPAIGN}/submit")
    approver = browser("phe_duyet")
    content_hash = shown_hash(approver.get(PREVIEW).text)
    # Between the page view and the POST, the editor loads a new version and submits it.
    load_campaign(context, workdir, sms_text="Nội dung đã đổi {{ vars.ngay }}")
    editor.post(f"/campaigns/{CAMPAIGN}/submit")
    for number in (1, 2):
        stale = approver.post(
            f"/campaigns/{CAMPAIGN}/versions/{number}/approve", {"content_hash": content_hash}
        )
        assert stale.status_code == 409
        assert "Không có gì thay đổi." in stale.text
    assert versions(context) == [(1, "superseded"), (2, "submitted")]
    assert state(context) == "draft"


def test_reject_needs_a_reason(browser: Browsers, loaded: Path, context: AppContext) -> None:
    editor = browser("bien_tap")
    editor.get("/")
    editor.post(f"/campaigns/{CAMPAIGN}/submit")
    approver = browser("phe_duyet")
    content_hash = shown_hash(approver.get(PREVIEW).text)
    blank = approver.post(
        f"/campaigns/{CAMPAIGN}/versions/1/reject", {"content_hash": content_hash, "reason": " "}
    )
    assert blank.status_code == 400
    assert "reason" in blank.text
    assert versions(context) == [(1, "submitted")]
    rejected = approver.post(
        f"/campaigns/{CAMPAIGN}/versions/1/reject", {"content_hash": content_hash, "reason": "Sai ngày"}
    )
    assert rejected.status_code == 303
    assert versions(context) == [(1, "rejected")]


def test_send_now_queues_a_run_for_the_workers(
    browser: Browsers, loaded: Path, context: AppContext, queued: list[int]
) -> None:
    approve_campaign(context)
    approver = browser("phe_duyet")
    assert approver.post(f"/campaigns/{CAMPAIGN}/send").status_code == 403
    editor = browser("bien_tap")
    editor.get("/")
    sent = editor.post(f"/campaigns/{CAMPAIGN}/send")
    assert sent.status_code == 303
    with context.readers() as session:
        runs = list(session.scalars(select(CampaignRun.id).where(CampaignRun.campaign_id == CAMPAIGN)))
    assert runs == queued
    assert len(runs) == 1
    assert len(_audit(context, "campaign.send")) == 1
    # A one-off campaign goes out once: the second press is refused on the page, nothing queued.
    again = editor.post(f"/campaigns/{CAMPAIGN}/send")
    assert again.status_code == 409
    assert queued == runs


def test_sending_a_draft_is_refused_on_the_page(
    browser: Browsers, loaded: Path, context: AppContext, queued: list[int]
) -> None:
    editor = browser("bien_tap")
    editor.get("/")
    refused = editor.post(f"/campaigns/{CAMPAIGN}/send")
    assert refused.status_code == 409
    assert "bản nháp" in refused.text
    assert queued == []


def test_pause_resume_and_cancel_by_role(browser: Browsers, loaded: Path, context: AppContext) -> None:
    approve_campaign(context)
    auditor = browser("kiem_toan")
    assert auditor.post(f"/campaigns/{CAMPAIGN}/pause").status_code == 403
    approver = browser("phe_duyet")
    approver.get("/")
    assert approver.post(f"/campaigns/{CAMPAIGN}/pause", {"reason": "chờ"}).status_code == 303
    assert state(context) == "paused"
    assert approver.post(f"/campaigns/{CAMPAIGN}/resume").status_code == 403
    editor = browser("bien_tap")
    editor.get("/")
    assert editor.post(f"/campaigns/{CAMPAIGN}/resume").status_code == 303
    assert state(context) == "approved"
    blank = editor.post(f"/campaigns/{CAMPAIGN}/cancel", {"reason": ""})
    assert blank.status_code == 400
    assert state(context) == "approved"
    assert editor.post(f"/campaigns/{CAMPAIGN}/cancel", {"reason": "Hủy theo chỉ đạo"}).status_code == 303
    assert state(context) == "cancelled"
    assert editor.post(f"/campaigns/{CAMPAIGN}/cancel", {"reason": "lần nữa"}).status_code == 409


def test_schedule_without_a_schedule_section_is_refused(
    browser: Browsers, loaded: Path, context: AppContext
) -> None:
    approve_campaign(context)
    editor = browser("bien_tap")
    editor.get("/")
    assert browser("kiem_toan").post(f"/campaigns/{CAMPAIGN}/schedule").status_code == 403
    refused = editor.post(f"/campaigns/{CAMPAIGN}/schedule")
    assert refused.status_code == 409
    assert "schedule" in refused.text
    assert state(context) == "approved"


def test_an_upload_with_a_yaml_error_shows_the_line_and_stores_nothing(
    browser: Browsers, loaded: Path, context: AppContext
) -> None:
    before = loaded.read_text(encoding="utf-8")
    editor = browser("bien_tap")
    editor.get(f"/campaigns/{CAMPAIGN}/edit")
    broken = before.replace("provider: sms_main", "provider: khong_co")
    answer = editor.post(
        f"/campaigns/{CAMPAIGN}/versions",
        files={"campaign_file": ("chien-dich.yaml", broken.encode(), "application/yaml")},
    )
    assert answer.status_code == 422
    line = broken.splitlines().index(next(x for x in broken.splitlines() if "khong_co" in x)) + 1
    assert f"campaigns/tests/{CAMPAIGN}.yaml:{line}" in answer.text
    assert "channels.sms.provider" in answer.text
    assert loaded.read_text(encoding="utf-8") == before
    assert versions(context) == [(1, "draft")]
    assert (
        browser("kiem_toan").post(f"/campaigns/{CAMPAIGN}/versions", {"campaign_text": before}).status_code
        == 403
    )


def test_edited_templates_are_written_and_loaded_as_a_new_draft(
    browser: Browsers, loaded: Path, context: AppContext, workdir: Path
) -> None:
    editor = browser("bien_tap")
    form = editor.get(f"/campaigns/{CAMPAIGN}/edit")
    assert 'value="sms/thu-nghiem.txt.j2"' in form.text
    new_sms = "Tin sửa {{ vars.ngay }}\r\n"
    answer = editor.post(
        f"/campaigns/{CAMPAIGN}/versions",
        {
            "campaign_text": loaded.read_text(encoding="utf-8"),
            "template_path": "sms/thu-nghiem.txt.j2",
            "template_text": new_sms,
        },
    )
    assert answer.status_code == 303, answer.text
    assert versions(context) == [(1, "draft"), (2, "draft")] or versions(context) == [
        (1, "superseded"),
        (2, "draft"),
    ]
    assert (workdir / "templates" / "sms" / "thu-nghiem.txt.j2").read_text(
        encoding="utf-8"
    ) == "Tin sửa {{ vars.ngay }}\n"
    assert len(_audit(context, "campaign.load")) == 2


def test_a_file_of_another_campaign_is_refused(browser: Browsers, loaded: Path, context: AppContext) -> None:
    editor = browser("bien_tap")
    editor.get(f"/campaigns/{CAMPAIGN}/edit")
    other = loaded.read_text(encoding="utf-8").replace(f"id: {CAMPAIGN}", "id: chien-dich-khac")
    answer = editor.post(f"/campaigns/{CAMPAIGN}/versions", {"campaign_text": other})
    assert answer.status_code == 422
    assert "chien-dich-khac" in answer.text
    assert versions(context) == [(1, "draft")]
    assert versions(context, "chien-dich-khac") == []


def test_template_paths_outside_templates_are_refused(browser: Browsers, loaded: Path, workdir: Path) -> None:
    editor = browser("bien_tap")
    editor.get(f"/campaigns/{CAMPAIGN}/edit")
    answer = editor.post(
        f"/campaigns/{CAMPAIGN}/versions",
        {
            "campaign_text": loaded.read_text(encoding="utf-8"),
            "template_path": "../broadcaster.toml",
            "template_text": "x",
        },
    )
    assert answer.status_code == 422
    assert (workdir / "broadcaster.toml").read_text(encoding="utf-8") != "x"


def test_submitting_for_nobody_says_so(
    browser: Browsers, context: AppContext, workdir: Path, people: object
) -> None:
    load_campaign(context, workdir, audience={"segments": ["khong_ai"]})
    editor = browser("bien_tap")
    editor.get("/")
    submitted = editor.post(f"/campaigns/{CAMPAIGN}/submit")
    assert submitted.headers["location"] == f"/campaigns/{CAMPAIGN}?done=submitted_to_nobody"
    assert "không đến được người nhận nào" in editor.get(submitted.headers["location"]).text
    assert versions(context) == [(1, "submitted")]


def test_schedule_then_send_outside_the_window_says_when_it_goes(
    browser: Browsers,
    context: AppContext,
    workdir: Path,
    people: object,
    contacts: ImportReport,
    clock: FrozenClock,
    queued: list[int],
) -> None:
    schedule = {"start": "2025-06-10 08:00", "window": {"start": "07:30", "end": "21:00"}}
    load_campaign(context, workdir, schedule=schedule)
    approve_campaign(context)
    editor = browser("bien_tap")
    editor.get("/")
    assert editor.post(f"/campaigns/{CAMPAIGN}/schedule").status_code == 303
    assert state(context) == "scheduled"
    clock.advance(timedelta(hours=14))  # Monday 22:00 in Da Nang: the window has closed
    late = browser("bien_tap")
    assert late.post(f"/campaigns/{CAMPAIGN}/send").status_code == 303
    assert len(queued) == 1
    page = late.get(f"/campaigns/{CAMPAIGN}")
    assert "ngoài khung giờ gửi; tin đầu tiên gửi lúc 07:30 Thứ Ba 03/06" in page.text  # the page's language
