"""The messages pages: the log with its filters and keyset pages, a message's events, masked exports."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, Message
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.pending_messages import pending
from tests.broadcaster.web.conftest import Browser
from tests.broadcaster.web.records_fixtures import HOSTILE_NAME

PHONE = "+84905111222"
EMAIL = "an.nguyen@example.vn"


def test_the_log_filters_and_masks_for_the_role(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    sms = pending(context, PHONE)
    pending(context, EMAIL, channel="email")
    editor = browser("bien_tap")
    page = editor.get("/messages", params={"channel": "sms"})
    assert page.status_code == 200
    assert PHONE in page.text
    assert EMAIL not in page.text
    by_recipient = editor.get("/messages", params={"recipient": "0905 111 222"})
    assert f'href="/messages/{sms}"' in by_recipient.text
    auditor = browser("kiem_toan").get("/messages")
    assert PHONE not in auditor.text
    assert EMAIL not in auditor.text
    detail = browser("kiem_toan").get(f"/messages/{sms}")
    assert detail.status_code == 200
    assert PHONE not in detail.text


def test_a_bad_filter_names_its_field(browser: Callable[[str | None], Browser]) -> None:
    page = browser("bien_tap").get("/messages", params={"from": "30/05/2026"})
    assert page.status_code == 400
    assert "Từ ngày" in page.text


def test_keyset_pages_follow_on(browser: Callable[[str | None], Browser], context: AppContext) -> None:
    ids = [pending(context, f"+8490511{n:04d}", key=f"k{n}") for n in range(55)]
    editor = browser("bien_tap")
    first = editor.get("/messages")
    assert f'href="/messages/{ids[0]}"' not in first.text
    second = editor.get("/messages", params={"before": str(ids[5])})
    assert f'href="/messages/{ids[0]}"' in second.text
    assert f'href="/messages/{ids[5]}"' not in second.text


def test_exports_are_masked_unless_an_admin_asks_and_that_is_audited(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    pending(context, PHONE)
    editor = browser("bien_tap")
    editor.get("/messages")
    masked = editor.post("/messages/export", {"format": "csv", "unmasked": "1"})
    assert masked.status_code == 200
    assert "attachment" in masked.headers["content-disposition"]
    assert PHONE not in masked.text
    assert "090" in masked.text
    admin = browser(ADMIN_LOGIN)
    admin.get("/messages")
    full = admin.post("/messages/export", {"format": "jsonl", "unmasked": "1"})
    assert PHONE in full.text
    with context.readers() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "personal_data.unmasked"))
    assert entry is not None
    assert entry.actor == ADMIN_LOGIN


def test_markup_in_a_message_is_escaped(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    message_id = pending(context, PHONE)
    with context.sessions.begin() as session:
        message = session.get(Message, message_id)
        assert message is not None
        message.reason = HOSTILE_NAME
    editor = browser("bien_tap")
    for path in ("/messages", f"/messages/{message_id}"):
        page = editor.get(path)
        assert HOSTILE_NAME not in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
