"""Sends and delivery outcomes in the audit chain: one ``delivery.window`` entry per recorded window and one
``delivery.results`` entry per applied batch of receipts, through the sandbox SMSC and SMTP server."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select, update

from broadcaster.audit.deliveries import RESULTS, WINDOW, AddressHasher
from broadcaster.audit.hashes import address_hash, content_hash
from broadcaster.audit.verify import verify_chain
from broadcaster.db.models import AuditEntry, Message
from broadcaster.outbox.handback import hand_back_worker
from broadcaster.vocabulary import MessageStatus
from channels.sandbox.smtp import SmtpBehaviour
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_crash import EMAIL_ONLY
from tests.broadcaster.delivery.test_email_delivery import email_only
from tests.broadcaster.delivery.test_sms_delivery import SHORT_SMS, sms_only
from tests.broadcaster.delivery.workdir_files import citizens

PEOPLE = 60


def entries(pipeline: Pipeline, action: str) -> list[AuditEntry]:
    with pipeline.context.readers() as session:
        return list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )


def listed(found: list[AuditEntry]) -> list[list[Any]]:
    return [m for entry in found for m in entry.details["messages"]]


def expected_hashes(pipeline: Pipeline, message: Message) -> tuple[str | None, str]:
    key = pipeline.context.settings.security.erasure_key()
    return address_hash(key, message.channel, message.address), content_hash(message.subject, message.body)


def test_an_sms_campaign_lists_every_sent_message_once_and_its_receipts(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(PEOPLE))
    run_id = pipeline.send(sms_only(pipeline, text=SHORT_SMS, unaccented=True))
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): PEOPLE})
    rows = {m.id: m for m in pipeline.messages(run_id)}

    windows = entries(pipeline, WINDOW)
    sent = listed(windows)
    assert Counter(m[0] for m in sent) == Counter(list(rows))  # every message, exactly once
    for message_id, status, address, content in sent:
        assert status == "sent"
        assert (address, content) == expected_hashes(pipeline, rows[message_id])
        assert address is not None
        assert len(address) == 64
    chunk_ids = {m.chunk_id for m in rows.values()}
    for entry in windows:
        assert entry.actor.startswith("outbox@")
        assert (entry.subject_type, int(entry.subject_id) in chunk_ids) == ("chunk", True)
        assert {k: entry.details[k] for k in ("provider", "channel", "run_id")} == {
            "provider": "sms_main",
            "channel": "sms",
            "run_id": run_id,
        }
        assert entry.details["campaign_id"] == rows[sent[0][0]].campaign_id
    # No plaintext address anywhere in the entries.
    assert not any(m.address.lstrip("+") in str(e.details) for e in windows for m in rows.values())

    results = listed(entries(pipeline, RESULTS))
    assert sorted(results) == sorted([mid, "delivered", "delivered"] for mid in rows)
    with pipeline.context.readers() as session:
        assert verify_chain(session).ok


def test_failed_mails_are_listed_with_their_status(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(smtp=SmtpBehaviour(reject_recipients=["cong.dan2@example.vn"]))
    pipeline.add_contacts(citizens(5))
    run_id = pipeline.send(email_only(pipeline))
    rows = {m.id: m for m in pipeline.messages(run_id)}

    sent = listed(entries(pipeline, WINDOW))
    assert sorted(m[:2] for m in sent) == sorted([m.id, m.status.value] for m in rows.values())
    assert {m[1] for m in sent} == {"sent", "permanent_failure"}
    for message_id, _status, address, content in sent:
        assert (address, content) == expected_hashes(pipeline, rows[message_id])
    with pipeline.context.readers() as session:
        assert verify_chain(session).ok


def test_deliveries_off_writes_no_delivery_entry(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(settings_sections={"audit": {"deliveries": False}})
    pipeline.add_contacts(citizens(10))
    run_id = pipeline.send(sms_only(pipeline, text=SHORT_SMS, unaccented=True))
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 10})

    assert entries(pipeline, WINDOW) == []
    assert entries(pipeline, RESULTS) == []
    assert entries(pipeline, "campaign.send")  # the rest of the trail is still written


def test_the_batched_address_hasher_equals_the_keyed_address_hash() -> None:
    hasher = AddressHasher("k")
    for channel, address in (("sms", "+84912000001"), ("email", "An.Nguyen@Example.vn")):
        assert hasher(channel, address) == address_hash("k", channel, address)
    assert AddressHasher("")("sms", "+84912000001") is None


@pytest.mark.services
def test_on_postgresql_the_windows_and_receipts_chain_and_verify(
    make_pipeline: PipelineFactory, postgres_url: str
) -> None:
    """The gateway's windows and the receipts applied beside them append under the locked chain head."""
    pipeline = make_pipeline(database_url=postgres_url)
    pipeline.add_contacts(citizens(30))
    run_id = pipeline.send(sms_only(pipeline, text=SHORT_SMS, unaccented=True))
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 30})
    rows = {m.id for m in pipeline.messages(run_id)}

    assert sorted(m[0] for m in listed(entries(pipeline, WINDOW))) == sorted(rows)
    assert sorted(m[0] for m in listed(entries(pipeline, RESULTS))) == sorted(rows)
    with pipeline.context.readers() as session:
        assert verify_chain(session).ok


def test_a_lost_workers_handed_messages_are_listed_as_held(make_pipeline: PipelineFactory) -> None:
    """The hand-back of a dead worker's rows: the handed ones (held as unknown) in a ``delivery.results``
    entry; the never-handed ones only went back to the queue and are not an outcome."""
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(4))
    run_id = pipeline.start_run(pipeline.approved_campaign(channels=EMAIL_ONLY))
    pipeline.plan(run_id)
    ids = [m.id for m in pipeline.messages(run_id)]
    dead = "elsewhere:4242"
    now = pipeline.clock.now()
    with pipeline.context.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id.in_(ids[:3]))
            .values(status=MessageStatus.SENDING, claimed_by=dead, claimed_at=now, attempts=1)
        )
        session.execute(update(Message).where(Message.id.in_(ids[:2])).values(handed_at=now))

    with pipeline.context.sessions.begin() as session:
        hand_back_worker(session, dead, now=now)

    [entry] = entries(pipeline, RESULTS)
    assert (entry.subject_type, entry.subject_id) == ("hand_back", dead)
    assert entry.actor.startswith("sweeper@")
    assert entry.details == {
        "provider": None,
        "messages": [[ids[0], "unknown", "worker_lost"], [ids[1], "unknown", "worker_lost"]],
    }
