"""``subject erase``: remove or anonymise everything held about one address, leaving a tombstone.

What goes and what stays (docs/domain.md §1.2, data-subject requests): contact rows, consent events, suppressions, do-not-call and
exclusion entries, inbox replies are deleted; messages stay (run counts and reports stay right) with the
address, body, subject and context gone; inbound records keep their row but lose their payload. The
tombstone keeps the request's reference and a keyed hash of the address, so the refusal outlives the
erasure (consent.erasure.erased_among). All of it commits in one transaction, with one audit entry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.db.models import Contact, ContactImport, InboundRecord, InboxReply, Message
from broadcaster.errors import StateError, UserError
from broadcaster.i18n import gettext as _
from broadcaster.subjects import held
from broadcaster.subjects.held import Subject
from broadcaster.vocabulary import MessageStatus
from channels.masking import mask_text
from consent.erasure import erasures_of, record_erasure
from consent.models import CampaignExclusion, ConsentEvent, DoNotCallEntry, Suppression

REFERENCE_MAX = 100
ERASED_REASON = "subject erased on request"


@dataclass(frozen=True)
class Held:
    """What an erasure would touch, per table (the confirmation shows it, the tombstone keeps it)."""

    contacts: list[Contact]
    messages: list[Message]
    consent_events: list[ConsentEvent]
    suppressions: list[Suppression]
    do_not_call: list[DoNotCallEntry]
    exclusions: list[CampaignExclusion]
    inbox_replies: list[InboxReply]
    inbound_ids: list[int]
    import_problems: list[tuple[ContactImport, int]]

    def counts(self) -> dict[str, int]:
        return {
            "contacts": len(self.contacts),
            "messages": len(self.messages),
            "consent_events": len(self.consent_events),
            "suppressions": len(self.suppressions),
            "do_not_call": len(self.do_not_call),
            "campaign_exclusions": len(self.exclusions),
            "inbox_replies": len(self.inbox_replies),
            "inbound_records": len(self.inbound_ids),
            "contact_import_problems": len(self.import_problems),
        }


@dataclass(frozen=True)
class Erasure:
    tombstone_id: int
    counts: dict[str, int]  # rows removed or anonymised, per table
    stopped: int  # of the messages, those not yet written to a provider, now suppressed


def checked_reference(reference: str | None, subject: Subject) -> str:
    """The request's reference, stripped; it is kept for ever, so it must not name the person."""
    text = (reference or "").strip()
    if not text:
        raise UserError(_("--reference is required: the request's reference (e.g. a dossier number) is kept"))
    if len(text) > REFERENCE_MAX:
        raise UserError(
            _("--reference is %(length)s characters long; at most %(max)s")
            % {"length": len(text), "max": REFERENCE_MAX}
        )
    if mask_text(text) != text or subject.key in text.lower():
        raise UserError(
            _("--reference must not contain a phone number or e-mail address: it outlives the erasure")
        )
    return text


def held_about(session: Session, subject: Subject) -> Held:
    return Held(
        contacts=held.contacts(session, subject),
        messages=held.messages(session, subject),
        consent_events=held.consent_events(session, subject),
        suppressions=held.suppressions(session, subject),
        do_not_call=held.do_not_call(session, subject),
        exclusions=held.exclusions(session, subject),
        inbox_replies=held.inbox_replies(session, subject),
        inbound_ids=[r.id for r in held.inbound_records(session, subject)],
        import_problems=held.import_problems(session, subject),
    )


def nothing_held(session: Session, subject: Subject, *, subject_hash: str) -> StateError:
    """The refusal when no row names the subject (a second erasure among them)."""
    earlier = erasures_of(session, subject_hash)
    note = f"; erased before under reference {earlier[-1].reference!r}" if earlier else ""
    return StateError(f"nothing is held about this {_what(subject)}{note}; nothing was changed")


def erase(
    session: Session, subject: Subject, *, reference: str, subject_hash: str, actor: str, now: datetime
) -> Erasure:
    """Erase in the caller's transaction; StateError (nothing changed) when nothing is held."""
    reference = checked_reference(reference, subject)
    found = held_about(session, subject)
    counts = found.counts()
    if not any(counts.values()):
        raise nothing_held(session, subject, subject_hash=subject_hash)
    tombstone = record_erasure(
        session, reference=reference, subject_hash=subject_hash, summary=counts, erased_by=actor, at=now
    )
    marker = f"erased:{tombstone.id}"
    stopped = _anonymise_messages(session, found.messages, marker=marker, now=now)
    summary = {**counts, "messages_stopped": stopped}
    _unlink_contacts(session, [c.id for c in found.contacts])
    for rows in (
        found.contacts,
        found.consent_events,
        found.suppressions,
        found.do_not_call,
        found.exclusions,
        found.inbox_replies,
    ):
        for instance in rows:
            session.delete(instance)
    _blank_inbound(session, found.inbound_ids, marker=marker, now=now)
    _blank_import_problems(found.import_problems, marker=marker)
    tombstone.summary = json.dumps(summary, sort_keys=True)
    audit.record(
        session,
        actor=actor,
        action="subject.erase",
        subject_type=held.AUDIT_SUBJECT_TYPE,
        subject_id=subject_hash,
        at=now,
        reason=reference,
        details={"channel": subject.channel, "tombstone": tombstone.id, "counts": summary},
    )
    session.flush()
    return Erasure(tombstone_id=tombstone.id, counts=counts, stopped=stopped)


def _anonymise_messages(session: Session, messages: Sequence[Message], *, marker: str, now: datetime) -> int:
    """Rows stay for the counts; whatever names or addresses the person goes. A message not yet written to a
    provider stops: its address is gone (an opt-out's own confirmation too)."""
    stopped = 0
    for message in messages:
        if message.status in (MessageStatus.QUEUED, MessageStatus.SENDING) and message.handed_at is None:
            message.status, message.final_at = MessageStatus.SUPPRESSED, now
            message.reason = ERASED_REASON
            stopped += 1
        message.address = message.address_key = marker
        # The planner's key embeds the address (run, channel, address): the row's id keeps it unique.
        message.idempotency_key = f"{marker}:{message.id}"
        message.body, message.subject, message.context = "", None, {}
        message.contact_id = None
        message.reason = mask_text(message.reason)
    return stopped


def _unlink_contacts(session: Session, contact_ids: Sequence[int]) -> None:
    # The contact's messages on its other channel lose the link too (the foreign key), not their address.
    if contact_ids:
        session.execute(
            update(Message)
            .where(Message.contact_id.in_(list(contact_ids)))
            .values(contact_id=None)
            .execution_options(synchronize_session=False)
        )


def _blank_inbound(session: Session, inbound_ids: Sequence[int], *, marker: str, now: datetime) -> None:
    """The record stays (its delivery events point to it); the provider's payload, which names the person,
    goes. An unprocessed record is closed: nothing is left to apply."""
    for record_id in inbound_ids:
        record = session.get(InboundRecord, record_id)
        if record is None:
            continue
        record.payload = {"erased": marker}
        if record.processed_at is None:
            record.processed_at, record.outcome = now, "erased"


def _blank_import_problems(problems: Sequence[tuple[ContactImport, int]], *, marker: str) -> None:
    """The import's report keeps its counts and its problem rows; the value quoting the address goes, and the
    reason is masked (a conversion warning names the new number)."""
    for batch, index in problems:
        report = dict(batch.report)  # a new object: the JSON column notices a replaced value, not a mutation
        report["problems"] = [dict(p) for p in report["problems"]]
        problem = report["problems"][index]
        problem["value"], problem["reason"] = marker, mask_text(problem.get("reason"))
        batch.report = report


def _what(subject: Subject) -> str:
    return "phone number" if subject.channel == "sms" else "e-mail address"
