"""Who a campaign reaches: the audience query in keyset pages, and per-channel eligibility of a contact.

Preview and the planner share this module so that what an approver saw counted is what gets planned.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from broadcaster.campaigns.schema import Audience
from broadcaster.db.models import Contact
from channels.base import Channel
from consent.ledger import withdrawn_among
from consent.suppression import address_key, suppressed_among


class Exclusion:
    """Why a contact gets no message on a channel (shown in preview, stored as ``suppressed`` + reason)."""

    NO_PHONE = "no phone number"
    LANDLINE = "landline: cannot receive SMS"
    NO_EMAIL = "no e-mail address"
    OPTED_OUT = "opted out of this channel"  # for the campaign's purpose, as the consent ledger says
    SUPPRESSED = "address suppressed (earlier hard failure or refusal)"
    DUPLICATE = "same address as another recipient of this run"
    TOO_LONG = "SMS longer than the allowed number of parts"


def audience_query(audience: Audience) -> Select[Contact]:
    query = select(Contact).where(Contact.segment.in_(audience.segments))
    filters = audience.filters
    for column, values in (
        (Contact.agency, filters.agency),
        (Contact.district, filters.district),
        (Contact.ward, filters.ward),
        (Contact.language, filters.language),
    ):
        if values:
            query = query.where(column.in_(values))
    return query


def _matches_tags(contact: Contact, audience: Audience) -> bool:
    # Tags live in a JSON list; filtering them in Python keeps the query portable (SQLite and PostgreSQL).
    tags = set(contact.tags or [])
    if audience.filters.tags_any and not tags.intersection(audience.filters.tags_any):
        return False
    return not (audience.exclude_tags and tags.intersection(audience.exclude_tags))


def iter_audience(
    session: Session, audience: Audience, *, page_size: int = 1000, after_id: int = 0
) -> Iterator[list[Contact]]:
    """Keyset pages (``WHERE id > last ORDER BY id``): constant cost per page, unlike OFFSET."""
    base = audience_query(audience)
    last = after_id
    while True:
        page = list(session.scalars(base.where(Contact.id > last).order_by(Contact.id).limit(page_size)))
        if not page:
            return
        last = page[-1].id
        yield [c for c in page if _matches_tags(c, audience)]


def channel_address(contact: Contact, channel: str) -> tuple[str | None, str | None]:
    """(normalised address, None) when the contact has an address fit for this channel, else (address or None,
    reason). Consent and suppression are the ``Screen``'s business: they need the database."""
    if channel == Channel.SMS:
        if not contact.phone:
            return None, Exclusion.NO_PHONE
        if contact.phone_kind != "mobile":
            return contact.phone, Exclusion.LANDLINE
        return contact.phone, None
    if channel == Channel.EMAIL:
        if not contact.email:
            return None, Exclusion.NO_EMAIL
        return contact.email, None  # as stored: the local part may be case-sensitive (RFC 5321 §2.4)
    raise ValueError(f"unsupported channel {channel!r}")


@dataclass
class Decision:
    contact: Contact
    channel: str
    address: str | None
    exclusion: str | None


class Screen:
    """Decides, page by page, which contacts get which channel: withdrawals of consent for the campaign's
    purpose, then suppressions, then duplicates per (run, channel, address), e-mail addresses
    case-insensitively (``address_key``)."""

    def __init__(self, channels: Sequence[str], *, purpose: str) -> None:
        self.channels = list(channels)
        self.purpose = purpose
        self._seen: dict[str, set[str]] = {channel: set() for channel in channels}

    def page(self, session: Session, contacts: list[Contact]) -> list[Decision]:
        decisions: list[Decision] = []
        for channel in self.channels:
            candidates = [(c, *channel_address(c, channel)) for c in contacts]
            reachable = [a for _c, a, why in candidates if a and why is None]
            withdrawn = withdrawn_among(session, channel, self.purpose, reachable)
            suppressed = suppressed_among(session, channel=channel, addresses=reachable)
            seen = self._seen[channel]
            for contact, address, why in candidates:
                if why is None and address in withdrawn:
                    why = Exclusion.OPTED_OUT
                elif why is None and address in suppressed:
                    why = Exclusion.SUPPRESSED
                elif why is None and address is not None and address_key(channel, address) in seen:
                    why = Exclusion.DUPLICATE
                if why is None and address is not None:
                    seen.add(address_key(channel, address))
                decisions.append(Decision(contact=contact, channel=channel, address=address, exclusion=why))
        return decisions
