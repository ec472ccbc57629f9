"""``broadcaster inbox``: replies waiting for staff (masked for auditors), ``inbox done`` with a reason and an
audit entry; and the reply handler's own idempotency (one inbox row, one confirmation per stored record)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, InboxReply, Message
from broadcaster.outbox.replies import Reply, ReplyRules, handle_replies
from tests.broadcaster.test_cli import Cli, cli, one_line, team

__all__ = ["cli", "team"]  # the fixtures, shared with test_cli


def replies_stored(context: AppContext, *texts: str) -> list[Reply]:
    now = context.clock.now()
    replies = [
        Reply(inbound_id=100 + n, provider="sms_main", sender="84905123456", text=text, received_at=now)
        for n, text in enumerate(texts)
    ]
    with context.sessions.begin() as session:
        handle_replies(session, replies, rules=ReplyRules.from_settings(context.settings), now=now)
    return replies


def test_inbox_lists_waiting_replies_and_done_marks_one_handled(
    cli: Cli, context: AppContext, team: None
) -> None:
    replies_stored(context, "toi muon hoi", "Gọi cho tôi số 0905111222")

    listed = cli.json("inbox", user="bien_tap")
    assert [(r["from"], r["text"], r["inbound_id"], r["handled"]) for r in listed] == [
        ("+84905123456", "toi muon hoi", 100, False),
        ("+84905123456", "Gọi cho tôi số 0905111222", 101, False),
    ]
    datetime.fromisoformat(listed[0]["received_at"])
    masked = cli.json("inbox", user="kiem_toan")
    assert [r["from"] for r in masked] == ["090****456"] * 2
    assert "0905111222" not in masked[1]["text"]

    first = listed[0]["id"]
    cli("inbox", "done", str(first), "--reason", "đã gọi lại", user="bien_tap")
    assert [r["id"] for r in cli.json("inbox")] == [listed[1]["id"]]
    everything = cli.json("inbox", "--all")
    assert [(r["handled"], r["handled_by"]) for r in everything] == [(True, "bien_tap"), (False, None)]
    with context.readers() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "inbox.done")).all()
    assert (entry.actor, entry.reason, entry.subject_id) == ("bien_tap", "đã gọi lại", str(first))

    assert "toi muon hoi" not in one_line(cli("inbox").stdout)
    again = cli("inbox", "done", str(first), "--reason", "lần nữa", expect=1)
    assert "already handled" in one_line(again.stdout + again.stderr)
    cli("inbox", "done", str(first + 1), "--reason", "xem", user="kiem_toan", expect=1)
    cli("inbox", "done", "999", "--reason", "x", expect=1)


def test_handling_the_same_reply_twice_stores_it_once(context: AppContext) -> None:
    refusal, question = replies_stored(context, "STOP", "hỏi")
    with context.sessions.begin() as session:
        handle_replies(
            session,
            [refusal, question],
            rules=ReplyRules.from_settings(context.settings),
            now=refusal.received_at,
        )
    with context.readers() as session:
        assert session.scalar(select(func.count()).select_from(InboxReply)) == 1
        assert session.scalar(select(func.count()).select_from(Message)) == 1
