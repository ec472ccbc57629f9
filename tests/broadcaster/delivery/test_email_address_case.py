"""E-mail addresses keep their case on the wire (RFC 5321 §2.4: the local part may be case-sensitive) while
de-duplication, suppression and idempotency keys treat them case-insensitively."""

from __future__ import annotations

from sqlalchemy import select

from broadcaster.db.models import User
from broadcaster.outbox.planner import idempotency_key
from broadcaster.outbox.sending import create_test_messages
from consent.suppression import suppress
from tests.broadcaster.conftest import START
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import citizen

MIXED = "An.Nguyen@DaNang.gov.vn"
STORED = "An.Nguyen@danang.gov.vn"  # the domain is normalised at import, the local part is kept


def email_only(pipeline: Pipeline) -> str:
    return pipeline.approved_campaign(
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}}
    )


def test_a_campaign_mail_goes_to_the_address_as_stored(pipeline: Pipeline) -> None:
    pipeline.add_contacts(
        [
            citizen(1, email=MIXED),
            citizen(2, email="an.nguyen@danang.gov.vn"),  # the same mailbox, spelt in lower case
            citizen(3, email="Tran.Binh@Example.vn"),
        ]
    )
    with pipeline.context.sessions.begin() as session:
        # Refused earlier under another spelling: still the same mailbox.
        suppress(
            session, channel="email", address="TRAN.BINH@example.vn", reason="5.1.1", source="t", at=START
        )
    campaign_id = email_only(pipeline)

    run_id = pipeline.send(campaign_id)

    assert pipeline.smtp.wait_for_count(1)
    assert pipeline.counts(run_id) == {("email", "sent"): 1, ("email", "suppressed"): 1}
    (mail,) = pipeline.smtp.received
    assert mail.rcpt_tos == (STORED,)
    assert mail.message()["To"].addresses[0].addr_spec == STORED
    sent = {m.address: m for m in pipeline.messages(run_id)}
    assert sent[STORED].status.value == "sent"
    assert sent["Tran.Binh@example.vn"].status.value == "suppressed"


def test_idempotency_keys_ignore_the_case_of_an_e_mail_address() -> None:
    assert idempotency_key(7, "email", STORED) == idempotency_key(7, "email", STORED.lower())
    assert idempotency_key(7, "sms", "+84912000001") == "run:7:sms:+84912000001"


def test_a_test_send_goes_to_the_address_as_typed(pipeline: Pipeline) -> None:
    campaign_id = email_only(pipeline)
    with pipeline.context.sessions.begin() as session:
        editor = session.scalar(select(User).where(User.login == pipeline.editor.login))
        assert editor is not None
        test = create_test_messages(
            session,
            campaign_id=campaign_id,
            to=[MIXED],
            actor=editor,
            settings=pipeline.context.settings,
            clock=pipeline.clock,
        )
    for chunk_id, _queue in test.chunks:
        pipeline.run_chunk(chunk_id)

    assert pipeline.smtp.wait_for_count(1)
    (mail,) = pipeline.smtp.received
    assert mail.rcpt_tos == (STORED,)
    assert mail.message()["To"].addresses[0].addr_spec == STORED
