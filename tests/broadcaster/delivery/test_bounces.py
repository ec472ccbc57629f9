"""E-mail bounces through the whole inbound path: a real RFC 3464 DSN, written as an MTA writes it about a mail
the engine sent, is stored as an inbound record, read by the e-mail adapter through the registry, and moves
that message (and only that one).

The DSN is built from the mail the sandbox relay received: its VERP envelope sender (``bounce+m{id}@…``) and
its Message-ID, the two things an MTA hands back.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from broadcaster.db.models import AuditEntry, DeliveryEventRow, InboundRecord
from broadcaster.outbox.inbound import inbound_batch_handler
from broadcaster.suppressing import SUPPRESS_ACTION
from broadcaster.vocabulary import MessageStatus
from channels.masking import mask_email
from consent.models import Suppression
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import citizens
from tests.channels.test_dsn import POSTFIX_FAILED

# The Postfix bounce of tests/channels/test_dsn.py, turned into one about a mail the engine sent.
SAMPLE_VERP = "bounce+m4242@bounce.danang.gov.vn"
SAMPLE_RECIPIENT = "khongtontai@example.vn"
SAMPLE_OUTCOME = (
    "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.example.vn\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <khongtontai@example.vn>: Recipient address\r\n"
    "    rejected: User unknown in virtual mailbox table\r\n"
)
RETURNED_HEADERS = "Content-Type: text/rfc822-headers\r\n\r\n"
FAILED = "Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 Recipient address rejected\r\n"
DELIVERED = "Action: delivered\r\nStatus: 2.0.0\r\nDiagnostic-Code: smtp; 250 2.0.0 Ok: queued as 9F8E7D\r\n"


def bounce(pipeline: Pipeline, address: str, *, evidence: str, outcome: str) -> dict[str, str]:
    """The inbound record a bounce listener stores for a DSN about the mail sent to ``address``.

    ``evidence`` says what names the mail: "headers" (as Postfix writes it: the DSN is addressed to our VERP
    address), "envelope" (the headers name a shared mailbox; only the RCPT TO the listener saw is the VERP
    address), or "message-id" (only the returned Message-ID)."""
    [mail] = [m for m in pipeline.smtp.received if m.rcpt_tos == (address,)]
    original = mail.message()
    to = mail.mail_from if evidence == "headers" else "postmaster@skhcn.danang.gov.vn"
    report, _, sample_returned = POSTFIX_FAILED.decode().partition(RETURNED_HEADERS)
    assert SAMPLE_OUTCOME in report
    report = (
        report.replace(SAMPLE_OUTCOME, outcome).replace(SAMPLE_VERP, to).replace(SAMPLE_RECIPIENT, address)
    )
    returned = f"To: <{address}>\r\nSubject: {original['Subject']}\r\n"
    if evidence == "message-id":
        returned = f"Message-ID: {original['Message-ID']}\r\n" + returned
    closing = sample_returned[sample_returned.index("\r\n--") :]
    record = {"dsn": report + RETURNED_HEADERS + returned + closing}
    if evidence == "envelope":
        record["envelope_to"] = mail.mail_from
    return record


def mail_three(pipeline: Pipeline) -> tuple[str, int]:
    """A campaign mailed to three citizens through the sandbox relay: (campaign id, run id)."""
    pipeline.add_contacts(citizens(3))
    campaign_id = pipeline.approved_campaign(
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}}
    )
    run_id = pipeline.send(campaign_id)
    assert pipeline.smtp.wait_for_count(3)
    return campaign_id, run_id


def store_bounce(pipeline: Pipeline, record: dict[str, str]) -> None:
    """Store (and so apply) the record as a bounce listener would."""
    store = inbound_batch_handler(
        pipeline.context.sessions, provider="mail", channel="email", clock=pipeline.clock
    )
    store([record])


@pytest.mark.parametrize("evidence", ["headers", "envelope", "message-id"])
@pytest.mark.parametrize(
    ("outcome", "status", "event"),
    [(FAILED, MessageStatus.PERMANENT_FAILURE, "failed"), (DELIVERED, MessageStatus.DELIVERED, "delivered")],
    ids=["failed", "delivered"],
)
def test_a_dsn_moves_the_mail_it_is_about(
    pipeline: Pipeline, evidence: str, outcome: str, status: MessageStatus, event: str
) -> None:
    _campaign_id, run_id = mail_three(pipeline)
    bounced, *others = pipeline.messages(run_id)

    store_bounce(pipeline, bounce(pipeline, bounced.address, evidence=evidence, outcome=outcome))

    by_id = {m.id: m for m in pipeline.messages(run_id)}
    assert by_id[bounced.id].status == status
    if status == MessageStatus.PERMANENT_FAILURE:
        assert by_id[bounced.id].reason == "5.1.1 err:550"
    assert {by_id[m.id].status for m in others} == {MessageStatus.SENT}
    with pipeline.context.readers() as session:
        [record] = session.scalars(select(InboundRecord))
        [row] = session.scalars(select(DeliveryEventRow))
    assert record.processed_at is not None
    assert record.outcome == event
    assert (row.message_id, row.inbound_id, row.provider, row.type) == (bounced.id, record.id, "mail", event)


MAILBOX_FULL = "Action: failed\r\nStatus: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n"


@pytest.mark.parametrize(
    ("outcome", "suppresses"), [(FAILED, True), (MAILBOX_FULL, False)], ids=["5.1.1", "5.2.2"]
)
def test_a_hard_bounce_suppresses_the_address_and_a_full_mailbox_does_not(
    pipeline: Pipeline, outcome: str, suppresses: bool
) -> None:
    campaign_id, run_id = mail_three(pipeline)
    bounced, *_others = pipeline.messages(run_id)

    store_bounce(pipeline, bounce(pipeline, bounced.address, evidence="headers", outcome=outcome))

    assert {m.id: m.status for m in pipeline.messages(run_id)}[bounced.id] == MessageStatus.PERMANENT_FAILURE
    with pipeline.context.readers() as session:
        rows = session.execute(select(Suppression.address, Suppression.source)).all()
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == SUPPRESS_ACTION)))
    if not suppresses:
        assert (rows, entries) == ([], [])
        return
    assert [(row.address, row.source) for row in rows] == [(bounced.address.lower(), "mail:5.1.1 err:550")]
    [entry] = entries
    assert entry.subject_id == mask_email(bounced.address.lower())
    # The next run does not even plan a message to that address.
    pipeline.advance(minutes=1)
    second = pipeline.send(campaign_id, again=True)
    assert {m.address: m.status for m in pipeline.messages(second)}[
        bounced.address
    ] == MessageStatus.SUPPRESSED
