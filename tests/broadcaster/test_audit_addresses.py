"""No audit entry carries a plaintext phone number or e-mail address (the log is to be hash-chained, so an
address in it could never be erased): ``audit.record`` masks them in the reason and in address-valued details,
and leaves other values alone."""

from __future__ import annotations

from sqlalchemy import select

from broadcaster import audit
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry


def test_addresses_are_masked_in_the_reason_and_the_details(context: AppContext) -> None:
    with context.sessions.begin() as session:
        audit.record(
            session,
            actor="bien_tap",
            action="campaign.test_send",
            subject_type="campaign",
            subject_id="thong-bao",
            at=context.clock.now(),
            reason="đã gọi lại số 0912000001 và gửi thư tới An.Nguyen@example.vn",
            details={
                "to": ["+84912000001", "An.Nguyen@example.vn"],
                "nested": {"phone": "0912000001"},
                "sha256": "a" * 20 + "1234567890123" + "b" * 31,
                "file": "danh-ba-20250602123456.csv",
                "count": 912000001,
            },
        )
    with context.readers() as session:
        stored = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
        assert stored.action == "campaign.test_send"
        assert stored.reason == "đã gọi lại số 091****001 và gửi thư tới A***@example.vn"
        assert stored.details["to"] == ["091****001", "A***@example.vn"]
        assert stored.details["nested"] == {"phone": "091****001"}
        assert stored.details["sha256"] == "a" * 20 + "1234567890123" + "b" * 31
        assert stored.details["file"] == "danh-ba-20250602123456.csv"
        assert stored.details["count"] == 912000001
