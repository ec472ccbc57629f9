"""E-mail bounces through the whole inbound path: a real RFC 3464 DSN, written as an MTA writes it about a mail
the engine sent, is stored as an inbound record, read by the e-mail adapter through the registry, and moves
that message (and only that one).

The DSN is built from the mail the sandbox relay received: its VERP envelope sender (``bounce+m{id}@…``) and
its Message-ID, the two things an MTA hands back.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from broadcaster.db.models import DeliveryEventRow, InboundRecord
from broadcaster.outbox.inbound import inbound_batch_handler
from broadcaster.outbox.status import MessageStatus
from tests.broadcaster.delivery.conftest import Pipeline, citizens

BOUNCE_TEMPLATE = """\
Return-Path: <>
Delivered-To: {to}
From: MAILER-DAEMON@mx.danang.gov.vn (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="5D1E2C3B4.1774851200/mx.danang.gov.vn"
Message-Id: <20260330061320.5D1E2C3B4@mx.danang.gov.vn>

This is a MIME-encapsulated message.

--5D1E2C3B4.1774851200/mx.danang.gov.vn
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.example.vn[203.0.113.5] said: 550 5.1.1
    <{recipient}>: Recipient address rejected: User unknown in
    virtual mailbox table (in reply to RCPT TO command)

--5D1E2C3B4.1774851200/mx.danang.gov.vn
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.danang.gov.vn
X-Postfix-Queue-ID: 5D1E2C3B4
Arrival-Date: Mon, 30 Mar 2026 13:13:18 +0700 (ICT)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.vn
Diagnostic-Code: smtp; {diagnostic}

--5D1E2C3B4.1774851200/mx.danang.gov.vn
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{returned_headers}
--5D1E2C3B4.1774851200/mx.danang.gov.vn--
"""

FAILED = {"action": "failed", "status": "5.1.1", "diagnostic": "550 5.1.1 Recipient address rejected"}
DELIVERED = {"action": "delivered", "status": "2.0.0", "diagnostic": "250 2.0.0 Ok: queued as 9F8E7D"}


def bounce(pipeline: Pipeline, address: str, *, evidence: str, outcome: dict[str, str]) -> dict[str, str]:
    """The inbound record a bounce listener stores for a DSN about the mail sent to ``address``.

    ``evidence`` says what names the mail: "headers" (as Postfix writes it: the DSN is addressed to our VERP
    address), "envelope" (the headers name a shared mailbox; only the RCPT TO the listener saw is the VERP
    address), or "message-id" (only the returned Message-ID)."""
    [mail] = [m for m in pipeline.smtp.received if m.rcpt_tos == (address,)]
    original = mail.message()
    to = mail.mail_from if evidence == "headers" else "postmaster@skhcn.danang.gov.vn"
    returned = f"To: <{address}>\nSubject: {original['Subject']}\n"
    if evidence == "message-id":
        returned = f"Message-ID: {original['Message-ID']}\n" + returned
    dsn = BOUNCE_TEMPLATE.format(to=to, recipient=address, returned_headers=returned, **outcome)
    record = {"dsn": dsn.replace("\n", "\r\n")}
    if evidence == "envelope":
        record["envelope_to"] = mail.mail_from
    return record


@pytest.mark.parametrize("evidence", ["headers", "envelope", "message-id"])
@pytest.mark.parametrize(
    ("outcome", "status", "event"),
    [(FAILED, MessageStatus.PERMANENT_FAILURE, "failed"), (DELIVERED, MessageStatus.DELIVERED, "delivered")],
    ids=["failed", "delivered"],
)
def test_a_dsn_moves_the_mail_it_is_about(
    pipeline: Pipeline, evidence: str, outcome: dict[str, str], status: MessageStatus, event: str
) -> None:
    pipeline.add_contacts(citizens(3))
    campaign_id = pipeline.approved_campaign(
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}}
    )
    run_id = pipeline.send(campaign_id)
    assert pipeline.smtp.wait_for_count(3)
    bounced, *others = pipeline.messages(run_id)

    store = inbound_batch_handler(
        pipeline.context.sessions, provider="mail", channel="email", clock=pipeline.clock
    )
    store([bounce(pipeline, bounced.address, evidence=evidence, outcome=outcome)])

    by_id = {m.id: m for m in pipeline.messages(run_id)}
    assert by_id[bounced.id].status == status
    if status == MessageStatus.PERMANENT_FAILURE:
        assert by_id[bounced.id].reason == "5.1.1 err:550"
    assert {by_id[m.id].status for m in others} == {MessageStatus.SENT}
    with pipeline.context.readers() as session:
        [record] = session.scalars(select(InboundRecord))
        [row] = session.scalars(select(DeliveryEventRow))
    assert record.processed_at is not None and record.outcome == event
    assert (row.message_id, row.inbound_id, row.provider, row.type) == (bounced.id, record.id, "mail", event)
