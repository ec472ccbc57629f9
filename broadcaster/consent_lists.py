"""Staff imports of the lists that keep messages from people: the do-not-call register (a refresh replaces it)
and a campaign's exclusion list (added to). Each import checks the whole file first (nothing is stored on one
bad line), writes its rows, its audit entry and the stop of the messages it now forbids in the caller's one
transaction (docs/architecture.md §4, "Suppression").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.campaigns.store import get_campaign
from broadcaster.clock import Clock
from broadcaster.contacts.address_list import read_address_list
from broadcaster.pending import stop_pending_listed
from broadcaster.settings_sections import ContactsSettings
from consent import dnc, exclusions
from consent.models import CampaignExclusion, DoNotCallEntry
from consent.policy import ExclusionReason, Purpose

DNC_IMPORT_ACTION: Final = "consent.dnc_import"
EXCLUSION_ACTION: Final = "campaign.exclusions_added"


@dataclass(frozen=True)
class DncImportReport:
    import_id: int
    numbers: int
    previous: int  # numbers on the register before this import
    stopped: int  # pending advertising SMS to listed numbers, now suppressed


@dataclass(frozen=True)
class ExclusionReport:
    list_name: str
    addresses: int  # distinct addresses in the file
    added: int  # of them, new on the campaign's list
    stopped: int  # the campaign's pending messages to them, now suppressed


def import_do_not_call(
    session: Session, *, path: Path, actor: str, clock: Clock, limits: ContactsSettings
) -> DncImportReport:
    """Replace the register with the numbers of ``path`` (docs/domain.md §1.4: applied to advertising SMS)."""
    listed = read_address_list(path, kinds=frozenset({"phone"}), limits=limits)
    now = clock.now()
    entry, previous = dnc.replace_register(
        session,
        phones=listed.of("sms"),
        source_name=path.name,
        sha256=listed.sha256,
        imported_by=actor,
        at=now,
    )
    stopped = stop_pending_listed(
        session,
        channel="sms",
        listed=select(DoNotCallEntry.phone),
        purposes=[Purpose.ADVERTISING.value],
        reason=ExclusionReason.DO_NOT_CALL,
        now=now,
    )
    audit.record(
        session,
        actor=actor,
        action=DNC_IMPORT_ACTION,
        subject_type="do_not_call_import",
        subject_id=entry.id,
        at=now,
        details={
            "file": path.name,
            "sha256": listed.sha256,
            "numbers": entry.numbers,
            "previous_numbers": previous,
            "stopped_messages": stopped,
        },
    )
    return DncImportReport(import_id=entry.id, numbers=entry.numbers, previous=previous, stopped=stopped)


def exclude_from_campaign(
    session: Session,
    *,
    campaign_id: str,
    path: Path,
    list_name: str | None,
    actor: str,
    clock: Clock,
    limits: ContactsSettings,
) -> ExclusionReport:
    """Add the phones and e-mails of ``path`` to ``campaign_id``'s exclusion list; its pending messages to
    them stop."""
    get_campaign(session, campaign_id)  # NotFound names the campaign
    listed = read_address_list(path, kinds=frozenset({"phone", "email"}), limits=limits)
    name = list_name or path.stem
    now = clock.now()
    added = exclusions.add_exclusions(
        session, campaign_id=campaign_id, addresses=listed.addresses, list_name=name, added_by=actor, at=now
    )
    stopped = sum(
        stop_pending_listed(
            session,
            channel=channel,
            listed=select(CampaignExclusion.address).where(
                CampaignExclusion.campaign_id == campaign_id, CampaignExclusion.channel == channel
            ),
            purposes=None,
            campaign_id=campaign_id,
            reason=ExclusionReason.CAMPAIGN_LIST,
            now=now,
        )
        for channel in sorted({channel for channel, _address in listed.addresses})
    )
    audit.record(
        session,
        actor=actor,
        action=EXCLUSION_ACTION,
        subject_type="campaign",
        subject_id=campaign_id,
        at=now,
        details={
            "list": name,
            "file": path.name,
            "sha256": listed.sha256,
            "addresses": len(listed.addresses),
            "added": added,
            "stopped_messages": stopped,
        },
    )
    return ExclusionReport(list_name=name, addresses=len(listed.addresses), added=added, stopped=stopped)
