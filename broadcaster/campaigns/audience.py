"""Who a campaign reaches: the audience query in keyset pages, and per-channel eligibility of a contact.

Preview and the planner share this module so that what an approver saw counted is what gets planned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, Select, func, select
from sqlalchemy.orm import Session

from broadcaster.campaigns.schema import Audience
from broadcaster.db.bulk import where_in
from broadcaster.db.models import Contact
from broadcaster.devices import tokens_of
from broadcaster.eligibility import PolicyScope, verdicts
from broadcaster.i18n import N_
from channels.base import Channel
from consent.policy import REASON_TEXTS, ExclusionReason, PolicySettings
from consent.suppression import address_key


class Exclusion:
    """Why a contact gets no message on a channel (shown in preview, stored as ``suppressed`` + reason).

    The texts are stored in English and translated where shown (the consent policy's are listed in
    ``broadcaster/consent_texts.py``)."""

    NO_PHONE = N_("no phone number")
    LANDLINE = N_("landline: cannot receive SMS")
    NO_EMAIL = N_("no e-mail address")
    # What the consent policy says (broadcaster.eligibility), for the campaign's purpose:
    OPTED_OUT = REASON_TEXTS[ExclusionReason.WITHDRAWN]
    SUPPRESSED = REASON_TEXTS[ExclusionReason.SUPPRESSED]
    NO_PRIOR_CONSENT = REASON_TEXTS[ExclusionReason.NO_PRIOR_CONSENT]
    DO_NOT_CALL = REASON_TEXTS[ExclusionReason.DO_NOT_CALL]
    CAMPAIGN_LIST = REASON_TEXTS[ExclusionReason.CAMPAIGN_LIST]
    NO_DEVICE = N_("no device registered for push")
    SOCIAL_TOO_LARGE = N_("social message empty or past its length limit")
    DUPLICATE = N_("same address as another recipient of this run")
    TOO_LONG = N_("SMS longer than the allowed number of parts")
    PUSH_TOO_LARGE = N_("push notification past the payload or text limits")


def too_big_reason(channel: str, too_long: bool) -> str:
    """Why a rendered message is kept back: an SMS past its parts, else past its channel's limits."""
    if too_long:
        return Exclusion.TOO_LONG
    return Exclusion.SOCIAL_TOO_LARGE if channel == Channel.SOCIAL else Exclusion.PUSH_TOO_LARGE


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
    session: Session,
    audience: Audience,
    *,
    page_size: int = 1000,
    after_id: int = 0,
    within: ColumnElement[bool] | None = None,
) -> Iterator[list[Contact]]:
    """Keyset pages (``WHERE id > last ORDER BY id``): constant cost per page, unlike OFFSET. ``within``
    narrows the audience further (a retry run: only the contacts whose message failed)."""
    base = audience_query(audience)
    if within is not None:
        base = base.where(within)
    yield from _keyset_pages(session.scalars, base, audience, page_size=page_size, after_id=after_id)


def _keyset_pages(
    fetch: Callable[[Any], Iterable[Any]], base: Any, audience: Audience, *, page_size: int, after_id: int
) -> Iterator[list[Any]]:
    last = after_id
    while True:
        page = list(fetch(base.where(Contact.id > last).order_by(Contact.id).limit(page_size)))
        if not page:
            return
        last = page[-1].id
        yield [c for c in page if _matches_tags(c, audience)]


# What preview reads of a contact: what the screen, the templates (``messages.contact_view``) and the SMS price
# use. ``iter_audience_rows`` reads these columns alone.
ROW_COLUMNS = (
    Contact.id,
    Contact.external_id,
    Contact.full_name,
    Contact.phone,
    Contact.phone_kind,
    Contact.carrier,
    Contact.email,
    Contact.segment,
    Contact.agency,
    Contact.district,
    Contact.ward,
    Contact.language,
    Contact.tags,
    Contact.attributes,
)


def iter_audience_rows(
    session: Session,
    audience: Audience,
    *,
    page_size: int = 1000,
    after_id: int = 0,
    within: ColumnElement[bool] | None = None,
) -> Iterator[list[Row[Any]]]:
    """``iter_audience``'s pages as plain rows of ``ROW_COLUMNS`` (attributes named as the contact's): no
    ORM object, identity map or change tracking per contact, which at a city's scale cost more than
    preview's counting or the planner's rendering does with them."""
    base = audience_query(audience).with_only_columns(*ROW_COLUMNS)
    if within is not None:
        base = base.where(within)
    yield from _keyset_pages(session.execute, base, audience, page_size=page_size, after_id=after_id)


def channel_address(contact: Contact, channel: str) -> tuple[str | None, str | None]:
    """(normalised address, None) when the contact has an address fit for this channel, else (address or None,
    reason). Consent and suppression are the ``Screen``'s business: they need the database. Push addresses
    are device tokens, in their own table: ``channel_candidates`` reads them."""
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


# A contact field an adapter names as its address (``Capabilities.address_field``) → the channel whose
# address rule reads that field (social ZNS messages go to the phone, checked as for SMS).
FIELD_CHANNELS = {"phone": Channel.SMS, "email": Channel.EMAIL}


def channel_candidates(
    session: Session, contacts: Sequence[Contact], channel: str, *, address_field: str | None = None
) -> list[tuple[Contact, str | None, str | None]]:
    """(contact, address, reason) per message a page could give on ``channel``: one per contact, except on
    push, one per registered device token (a contact without any: one with ``NO_DEVICE``). ``address_field``:
    the contact field the channel's adapter addresses (``Capabilities.address_field``)."""
    if address_field is not None:
        if address_field not in FIELD_CHANNELS:
            raise ValueError(f"unsupported address field {address_field!r}")
        return [(c, *channel_address(c, FIELD_CHANNELS[address_field])) for c in contacts]
    if channel != Channel.PUSH:
        return [(c, *channel_address(c, channel)) for c in contacts]
    tokens = tokens_of(session, [c.id for c in contacts])
    candidates: list[tuple[Contact, str | None, str | None]] = []
    for contact in contacts:
        found = tokens.get(contact.id)
        if not found:
            candidates.append((contact, None, Exclusion.NO_DEVICE))
        candidates.extend((contact, token, None) for token in found or ())
    return candidates


def push_person(contact: Contact) -> str:
    """Whom the consent policy judges for a push message: the person, by the address the city app names
    them with (the consent and device endpoints), the phone number, else the e-mail address; every device of
    theirs shares the verdict. Stored as the message's ``address_key`` (docs/push.md, "Consent")."""
    if contact.phone:
        return address_key(Channel.SMS, contact.phone)
    if contact.email:
        return address_key(Channel.EMAIL, contact.email)
    return f"contact:{contact.id}"


def consent_key(contact: Contact, channel: str, address: str | None) -> str | None:
    """The key the consent policy judges and the message stores as ``address_key``: the person on push,
    else the address's own key (None: no address)."""
    if channel == Channel.PUSH:
        return push_person(contact)
    return address_key(channel, address) if address is not None else None


@dataclass
class Decision:
    contact: Contact
    channel: str
    address: str | None
    exclusion: str | None
    key: str | None = None
    """What the message stores as ``address_key`` (``consent_key``): on push, the person."""
    not_before: datetime | None = None
    """The consent policy's moment (send hours, caps) when it is later than the one asked about."""
    deferral: str | None = None
    """Why the policy deferred it (``eligibility.DEFERRED_BY_HOURS`` or ``DEFERRED_BY_CAP``)."""


class Screen:
    """Decides, page by page, which contacts get which channel and from when: the consent policy for the
    campaign's purpose (``broadcaster.eligibility``: suppressions, the campaign's list, the ledger, the
    do-not-call register, send hours and caps), per address, or per person on push (``push_person``), then
    duplicates per (run, channel, address), e-mail addresses case-insensitively (``address_key``)."""

    def __init__(
        self,
        channels: Sequence[str],
        *,
        purpose: str,
        campaign_id: str,
        tz: ZoneInfo,
        policy: PolicySettings,
        erasure_key: str = "",
        address_fields: Mapping[str, str | None] | None = None,
        planned_keys: Callable[[Session, str, list[str]], set[str]] | None = None,
    ) -> None:
        """``planned_keys(session, channel, keys)``: which of these address keys the run already has a
        message for on the channel (the planner's lookup). Given, an address met on an earlier page is found
        in the database rather than in a set that grows with the audience (push devices stay in the set)."""
        self.channels = list(channels)
        self.address_fields = dict(address_fields or {})
        self.planned_keys = planned_keys
        self.scopes = {
            channel: PolicyScope(
                purpose=purpose,
                channel=channel,
                campaign_id=campaign_id,
                tz=tz,
                settings=policy,
                erasure_key=erasure_key,
            )
            for channel in channels
        }
        self._seen: dict[str, set[str]] = {channel: set() for channel in channels}

    def page(self, session: Session, contacts: list[Contact], *, at: datetime) -> list[Decision]:
        """The page's decisions for messages meant to go at ``at`` (now, or when the send window opens)."""
        decisions: list[Decision] = []
        for channel in self.channels:
            candidates = channel_candidates(
                session, contacts, channel, address_field=self.address_fields.get(channel)
            )
            # Judged once per address (per person on push: all their devices share one verdict). A second
            # contact with the address is a duplicate, not a second send against its cap.
            judged_as = {
                address: consent_key(contact, channel, address) if channel == Channel.PUSH else address
                for contact, address, why in candidates
                if address and why is None
            }
            reachable = [key for key in dict.fromkeys(judged_as.values()) if key is not None]
            found = verdicts(session, self.scopes[channel], reachable, at=at)
            judged = dict(zip(reachable, found, strict=True))
            seen = self._seen[channel]
            if self.planned_keys is not None and channel != Channel.PUSH:
                seen = self.planned_keys(session, channel, [address_key(channel, a) for a in judged_as])
            for contact, address, why in candidates:
                verdict = (
                    judged.get(judged_as.get(address) or "") if why is None and address is not None else None
                )
                if verdict is not None and verdict.exclusion is not None:
                    why = verdict.exclusion
                elif why is None and address is not None and address_key(channel, address) in seen:
                    why = Exclusion.DUPLICATE
                if why is None and address is not None:
                    seen.add(address_key(channel, address))
                decisions.append(
                    Decision(
                        contact=contact,
                        channel=channel,
                        address=address,
                        exclusion=why,
                        key=consent_key(contact, channel, address),
                        not_before=verdict.not_before if verdict and why is None else None,
                        deferral=verdict.deferral if verdict and why is None else None,
                    )
                )
        return decisions


class EarlierInAudience:
    """A ``Screen``'s ``planned_keys`` for preview, which stores nothing: the address keys among those asked
    about that a contact of the audience before the current page (``before``: its first id) has, fit for the
    channel. That is what the screen's own set would hold by then, since a key is judged alike whoever has
    it (the consent lookups go by key): an earlier contact with it was either let through, or excluded for
    the same reason as this one. Found by the contacts' indexes on ``phone`` and ``lower(email)`` instead of
    a set of every address met, which at a city's scale is hundreds of MiB; an address whose letters are not
    all ASCII, which the database's ``lower`` may fold otherwise than Python's, is kept in a set instead."""

    def __init__(self, audience: Audience, address_fields: Mapping[str, str | None]) -> None:
        self.audience = audience
        self.address_fields = dict(address_fields)
        self.before = 0
        self._not_ascii: dict[str, set[str]] = {}

    def __call__(self, session: Session, channel: str, keys: list[str]) -> set[str]:
        column = self._column(channel)
        wanted = set(keys)
        found = self._not_ascii.get(channel, set()) & wanted
        # First by the address's index alone (with the audience's conditions the database may prefer the
        # segment's index and read every earlier contact), then whether those few are in the audience.
        table = Contact.__table__.c
        key: ColumnElement[Any] = table.phone if column is Contact.phone else func.lower(table.email)
        query = where_in(session, select(Contact.id, column).where(Contact.id < self.before), key, keys)
        if column is Contact.phone:
            query = query.where(Contact.phone_kind == "mobile")
        addresses = {row.id: row[1] for row in session.execute(query) if row[1]}
        if not addresses:
            return found
        members = cast(
            "Select[Any]", audience_query(self.audience).with_only_columns(Contact.id, Contact.tags)
        )
        for row in session.execute(where_in(session, members, table.id, list(addresses))):
            if _matches_tags(row, self.audience):  # type: ignore[arg-type]  # reads .tags
                found.add(address_key(channel, addresses[row.id]))
        return found & wanted

    def met(self, contacts: Sequence[Contact], channels: Sequence[str]) -> None:
        """After a page: keep the keys of its addresses that are not all ASCII."""
        for channel in channels:
            column = self._column(channel)
            kept = self._not_ascii.setdefault(channel, set())
            for contact in contacts:
                value = getattr(contact, column.key)
                if value and not value.isascii():
                    address, why = channel_address(contact, FIELD_CHANNELS[column.key])
                    if why is None and address is not None:
                        kept.add(address_key(channel, address))
        if contacts:
            self.before = contacts[-1].id + 1

    def _column(self, channel: str) -> Any:
        field = self.address_fields.get(channel) or (
            "phone" if channel == Channel.SMS else "email" if channel == Channel.EMAIL else None
        )
        if field not in FIELD_CHANNELS:
            raise ValueError(f"no address column for channel {channel!r}")
        return Contact.phone if field == "phone" else Contact.email
