"""The reports page: generate a period's report, its figures and charts, downloads; an auditor's generation
stores nothing; an approver may not open it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from broadcaster.context import AppContext
from broadcaster.db.models import Message, RollupDay
from broadcaster.vocabulary import MessageStatus
from tests.broadcaster.pending_messages import pending
from tests.broadcaster.web.conftest import Browser


def _sent_message(context: AppContext) -> None:
    message_id = pending(context, "+84905111222")
    with context.sessions.begin() as session:
        message = session.get(Message, message_id)
        assert message is not None
        message.status = MessageStatus.SENT
        message.sent_at = context.clock.now()


def _rollups(context: AppContext) -> int:
    with context.readers() as session:
        return int(session.scalar(select(func.count()).select_from(RollupDay)) or 0)


def test_an_editor_generates_a_half_year_and_downloads_it(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    _sent_message(context)
    editor = browser("bien_tap")
    editor.get("/reports")
    page = editor.post("/reports", {"period": "2025-H1"})
    assert page.status_code == 200, page.text
    assert "Số tin nhắn đã gửi" in page.text
    assert 'src="/reports/charts/monthly_by_channel.png?period=2025-H1"' in page.text
    chart = editor.client.get("/reports/charts/monthly_by_channel.png", params={"period": "2025-H1"})
    assert chart.status_code == 200
    assert chart.content.startswith(b"\x89PNG")
    document = editor.post("/reports/download", {"period": "2025-H1", "format": "csv"})
    assert document.status_code == 200
    assert "attachment" in document.headers["content-disposition"]


def test_an_auditor_generates_without_storing_and_an_approver_is_refused(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    _sent_message(context)
    auditor = browser("kiem_toan")
    auditor.get("/reports")
    page = auditor.post("/reports", {"from": "2025-06-01", "to": "2025-06-30"})
    assert page.status_code == 200
    assert _rollups(context) == 0
    editor = browser("bien_tap")
    editor.get("/reports")
    editor.post("/reports", {"from": "2025-06-01", "to": "2025-06-30"})
    assert _rollups(context) > 0
    assert browser("phe_duyet").get("/reports").status_code == 403


def test_a_bad_period_names_its_field(browser: Callable[[str | None], Browser]) -> None:
    editor = browser("bien_tap")
    editor.get("/reports")
    page = editor.post("/reports", {"from": "2025-06-30", "to": "2025-06-01"})
    assert page.status_code == 422
    assert "Đến ngày" in page.text
