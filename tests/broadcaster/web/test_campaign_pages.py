"""The dashboard, the campaign pages, the diff, the preview and its sandboxed e-mail samples, the progress JSON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.campaigns.store import get_version
from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from broadcaster.db.models import CampaignRun
from broadcaster.outbox.sending import start_manual_run
from tests.broadcaster.web.campaign_setup import CAMPAIGN, approve_campaign, load_campaign, plan, user_named
from tests.broadcaster.web.conftest import Browser

NASTY = "<script>alert(1)</script>"

Browsers = Callable[[str | None], Browser]


@pytest.fixture
def loaded(context: AppContext, workdir: Path, people: object, contacts: ImportReport) -> Path:
    return load_campaign(context, workdir)


def _run(context: AppContext) -> int:
    with context.sessions.begin() as session:
        return start_manual_run(
            session, campaign_id=CAMPAIGN, actor=user_named(session, "bien_tap"), clock=context.clock
        )


def test_a_title_with_markup_is_escaped_on_every_campaign_page(
    browser: Browsers, context: AppContext, workdir: Path, people: object, contacts: ImportReport
) -> None:
    load_campaign(context, workdir, title=NASTY)
    load_campaign(context, workdir, title=NASTY, variables={"ngay": "02/07/2025", "thu_tuc": "khác"})
    editor = browser("bien_tap")
    pages = [
        "/",
        "/campaigns",
        f"/campaigns/{CAMPAIGN}",
        f"/campaigns/{CAMPAIGN}/diff?from=1&to=2",
        f"/campaigns/{CAMPAIGN}/versions/2/preview",
        f"/campaigns/{CAMPAIGN}/edit",
    ]
    for path in pages:
        page = editor.get(path)
        assert page.status_code == 200, path
        assert NASTY not in page.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path


def test_the_campaign_page_shows_the_definition_versions_and_the_role_s_buttons(
    browser: Browsers, loaded: Path
) -> None:
    page = browser("bien_tap").get(f"/campaigns/{CAMPAIGN}")
    assert page.status_code == 200
    for shown in ("public_information", "sms_main", "sms/thu-nghiem", "citizen", "Sở Khoa học và Công nghệ"):
        assert shown in page.text
    assert str(loaded.name) in page.text  # the file source
    assert f"/campaigns/{CAMPAIGN}/edit" in page.text  # an editor may load a new version
    auditor = browser("kiem_toan").get(f"/campaigns/{CAMPAIGN}")
    assert f"/campaigns/{CAMPAIGN}/edit" not in auditor.text
    assert f'action="/campaigns/{CAMPAIGN}/cancel"' not in auditor.text


def test_an_unknown_campaign_is_a_page_saying_so_not_an_error(browser: Browsers, people: object) -> None:
    page = browser("bien_tap").get("/campaigns/khong-co")
    assert page.status_code == 404
    assert "khong-co" in page.text


def test_the_diff_colours_added_and_removed_lines(
    browser: Browsers, context: AppContext, workdir: Path, people: object, contacts: ImportReport
) -> None:
    load_campaign(context, workdir)
    load_campaign(context, workdir, sms_text="Tin mới {{ vars.ngay }}")
    page = browser("kiem_toan").get(f"/campaigns/{CAMPAIGN}/diff?from=1&to=2")
    assert page.status_code == 200
    assert '<span class="diff-added">+Tin mới {{ vars.ngay }}</span>' in page.text
    assert 'class="diff-removed">-' in page.text
    assert "templates/sms/thu-nghiem.txt.j2" in page.text
    assert browser("kiem_toan").get(f"/campaigns/{CAMPAIGN}/diff?from=1&to=9").status_code == 404


def test_the_preview_shows_counts_cost_and_the_full_hash(
    browser: Browsers, loaded: Path, context: AppContext
) -> None:
    page = browser("bien_tap").get(f"/campaigns/{CAMPAIGN}/versions/1/preview")
    assert page.status_code == 200
    with context.readers() as session:
        full_hash = get_version(session, CAMPAIGN, 1).content_hash
    assert full_hash in page.text
    assert "sms_main" in page.text
    assert "GSM" in page.text or "gsm" in page.text  # the SMS encoding
    assert f'action="/campaigns/{CAMPAIGN}/submit"' in page.text  # a draft: the editor may submit


def test_samples_are_masked_for_auditors(browser: Browsers, loaded: Path) -> None:
    editor = browser("bien_tap").get(f"/campaigns/{CAMPAIGN}/versions/1/preview").text
    auditor = browser("kiem_toan").get(f"/campaigns/{CAMPAIGN}/versions/1/preview").text
    assert "****" in auditor
    assert "****" not in editor


def test_an_e_mail_sample_is_served_sandboxed_with_its_own_policy(
    browser: Browsers, context: AppContext, workdir: Path, people: object, contacts: ImportReport
) -> None:
    (workdir / "templates" / "email").mkdir(parents=True, exist_ok=True)
    (workdir / "templates" / "email" / "thu-nghiem.html.j2").write_text(
        "<p>Kính gửi {{ contact.full_name }}</p><script>alert(2)</script>", encoding="utf-8"
    )
    load_campaign(context, workdir)
    editor = browser("bien_tap")
    page = editor.get(f"/campaigns/{CAMPAIGN}/versions/1/preview")
    assert 'sandbox title="' in page.text
    assert f'src="/campaigns/{CAMPAIGN}/versions/1/samples/0"' in page.text
    sample = editor.get(f"/campaigns/{CAMPAIGN}/versions/1/samples/0")
    assert sample.status_code == 200
    assert sample.headers["content-security-policy"] == (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    assert "Kính gửi" in sample.text
    assert editor.get(f"/campaigns/{CAMPAIGN}/versions/1/samples/99").status_code == 404


def test_the_dashboard_shows_the_last_run_and_polls_a_running_one(
    browser: Browsers, loaded: Path, context: AppContext
) -> None:
    approve_campaign(context)
    run_id = _run(context)
    plan(context, run_id)
    page = browser("kiem_toan").get("/")
    assert page.status_code == 200
    assert f'data-progress-url="/campaigns/{CAMPAIGN}/runs/{run_id}/progress"' in page.text
    assert "<progress" in page.text


def test_the_progress_json_counts_per_channel_and_status(
    browser: Browsers, loaded: Path, context: AppContext
) -> None:
    approve_campaign(context)
    run_id = _run(context)
    plan(context, run_id)
    with context.readers() as session:
        run = session.scalar(select(CampaignRun).where(CampaignRun.id == run_id))
        assert run is not None
    answer = browser("kiem_toan").get(f"/campaigns/{CAMPAIGN}/runs/{run_id}/progress")
    assert answer.status_code == 200
    data = answer.json()
    queued = sum(per.get("queued", 0) for per in data["counts"].values())
    assert queued > 0
    assert data["planned"] == sum(sum(per.values()) for per in data["counts"].values())
    assert data["done"] == data["planned"] - queued
    assert data["finished"] is False
    assert set(data["figures"]) == set(data["counts"])
    assert browser("kiem_toan").get(f"/campaigns/khac/runs/{run_id}/progress").status_code == 404


def test_the_progress_json_needs_a_session(browser: Browsers, loaded: Path) -> None:
    anonymous = browser(None).client.get(f"/campaigns/{CAMPAIGN}/runs/1/progress")
    assert anonymous.status_code == 401
