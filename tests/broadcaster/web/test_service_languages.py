"""A service's refusal reaches the reader in their language: the services raise their errors through the
catalogue, so a web page (language cookie) and an API problem (``Accept-Language``) show the same refusal
in Vietnamese or in English, never a mix of the page's language and the service's English."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from broadcaster.users import set_role
from broadcaster.vocabulary import Role
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.web.campaign_setup import CAMPAIGN, load_campaign, shown_hash, versions
from tests.broadcaster.web.conftest import Browser

Browsers = Callable[[str | None], Browser]
PREVIEW = f"/campaigns/{CAMPAIGN}/versions/1/preview"


def _in_english(person: Browser) -> Browser:
    person.client.cookies.set("broadcaster_language", "en")
    return person


def test_sending_a_draft_is_refused_in_the_readers_language(
    browser: Browsers, context: AppContext, workdir: Path, contacts: ImportReport
) -> None:
    load_campaign(context, workdir)
    vietnamese = browser("bien_tap")
    vietnamese.get("/")
    refused = vietnamese.post(f"/campaigns/{CAMPAIGN}/send")
    assert refused.status_code == 409
    assert "chỉ chiến dịch đã phê duyệt hoặc đã lên lịch mới gửi được" in refused.text
    assert "only an approved or scheduled campaign" not in refused.text

    english = _in_english(browser("bien_tap"))
    english.get("/")
    refused = english.post(f"/campaigns/{CAMPAIGN}/send")
    assert refused.status_code == 409
    assert f"campaign &#39;{CAMPAIGN}&#39; is draft; only an approved or scheduled campaign can be sent" in (
        refused.text
    )


def test_approving_the_version_one_submitted_is_refused_in_the_readers_language(
    browser: Browsers, context: AppContext, workdir: Path, contacts: ImportReport
) -> None:
    load_campaign(context, workdir)
    editor = browser("bien_tap")
    editor.get("/")
    assert editor.post(f"/campaigns/{CAMPAIGN}/submit").status_code == 303
    with context.sessions.begin() as session:  # the editor is made an approver after submitting
        set_role(session, actor=ADMIN_LOGIN, login="bien_tap", role=Role.APPROVER, clock=context.clock)

    for person, expected in (
        (browser("bien_tap"), "bạn đã trình duyệt phiên bản 1 của"),
        (_in_english(browser("bien_tap")), "you submitted version 1 of"),
    ):
        content_hash = shown_hash(person.get(PREVIEW).text)
        refused = person.post(f"/campaigns/{CAMPAIGN}/versions/1/approve", {"content_hash": content_hash})
        assert refused.status_code == 409
        assert expected in refused.text
    assert versions(context) == [(1, "submitted")]
