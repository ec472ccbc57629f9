"""Suppression from the providers' answers, applied through the stored-record path: a receipt saying the
number does not exist and a hard-bounce DSN suppress the address, once, with one audit entry naming it only
masked, and stop its other unwritten messages (docs/architecture.md §4, "Suppression").

Messages are written straight into a fresh working directory's database, as in ``test_inbound.py``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, Message
from broadcaster.outbox.inbound import apply_pending
from broadcaster.suppressing import SUPPRESS_ACTION, suppress_address
from broadcaster.vocabulary import MessageStatus
from consent.models import Suppression
from tests.broadcaster.pending_messages import pending
from tests.broadcaster.test_inbound import PROVIDER, sent_sms, store

PHONE = "+84912000001"  # sent_sms's address
UNDELIV = 5  # SMPP v3.4 §5.2.28 message_state UNDELIVERABLE


def failed_receipt(provider_id: str, err: str) -> dict[str, Any]:
    text = f"id:{provider_id} sub:001 dlvrd:000 submit date:2601150830 done date:2601150831 stat:UNDELIV err:{err}"
    return {
        "esm_class": 0x04,
        "data_coding": 0,
        "short_message_hex": text.encode().hex(),
        "message_state": UNDELIV,
    }


def statuses(context: AppContext) -> dict[int, MessageStatus]:
    with context.readers() as session:
        return {row.id: row.status for row in session.execute(select(Message.id, Message.status))}


def audit_entries(context: AppContext) -> list[AuditEntry]:
    with context.readers() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == SUPPRESS_ACTION)))


def suppressions(context: AppContext) -> list[tuple[str, str, str]]:
    with context.readers() as session:
        rows = session.execute(select(Suppression.channel, Suppression.address, Suppression.source))
        return [(row.channel, row.address, row.source) for row in rows]


def test_an_unknown_subscriber_receipt_suppresses_the_number_and_stops_its_queued_messages(
    context: AppContext,
) -> None:
    sent = sent_sms(context, "a1")
    same = pending(context, PHONE, key="same")
    system = pending(context, PHONE, key="system", purpose=None)  # a confirmation: never stopped
    other = pending(context, "+84912000002", key="other")
    store(context, [failed_receipt("a1", "001")])

    apply_pending(context.sessions, provider=PROVIDER, clock=context.clock)

    assert statuses(context) == {
        sent: MessageStatus.PERMANENT_FAILURE,
        same: MessageStatus.SUPPRESSED,
        system: MessageStatus.QUEUED,
        other: MessageStatus.QUEUED,
    }
    assert suppressions(context) == [("sms", PHONE, f"{PROVIDER}:UNDELIV err:001")]
    [entry] = audit_entries(context)
    assert entry.actor == "engine"
    assert (entry.subject_type, entry.subject_id) == ("address", "091****001")
    assert entry.details == {"channel": "sms", "source": f"{PROVIDER}:UNDELIV err:001", "stopped_messages": 1}
    assert PHONE[3:] not in repr(entry.details) + (entry.reason or "")


def test_a_repeated_receipt_and_a_second_message_add_no_second_entry(context: AppContext) -> None:
    sent_sms(context, "a1")
    sent_sms(context, "b2")  # the same number, another message
    store(context, [failed_receipt("a1", "001"), failed_receipt("a1", "001"), failed_receipt("b2", "1")])

    apply_pending(context.sessions, provider=PROVIDER, clock=context.clock)

    assert len(suppressions(context)) == 1
    assert len(audit_entries(context)) == 1


def test_a_receipt_that_blames_something_else_suppresses_nobody(context: AppContext) -> None:
    sent = sent_sms(context, "a1")
    same = pending(context, PHONE, key="same")
    store(context, [failed_receipt("a1", "027")])  # absent subscriber: the phone is off

    apply_pending(context.sessions, provider=PROVIDER, clock=context.clock)

    assert statuses(context) == {sent: MessageStatus.PERMANENT_FAILURE, same: MessageStatus.QUEUED}
    assert suppressions(context) == []
    assert audit_entries(context) == []


def test_suppressing_twice_keeps_the_first_reason_and_one_entry(context: AppContext) -> None:
    now = context.clock.now()
    with context.sessions.begin() as session:
        first = suppress_address(
            session, channel="email", address="An@Example.vn", reason="5.1.1", source="x", now=now
        )
        again = suppress_address(
            session, channel="email", address="an@example.vn", reason="later", source="y", now=now
        )
    assert (first, again) == (True, False)
    assert suppressions(context) == [("email", "an@example.vn", "x")]
    [entry] = audit_entries(context)
    assert entry.subject_id == "a***@example.vn"
