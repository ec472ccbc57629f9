"""Who may get a message of a purpose on a channel now, later or never: the consent policy (``consent.policy``)
fed from the ledger, the suppression list, the do-not-call register, the campaign's exclusion list and the
address's recent sends, in a few queries per page of addresses.

The planner (through ``campaigns.audience.Screen``) and the check right before each window
(``outbox.screening``) both decide here, so what was planned and what is sent follow one rule
(docs/architecture.md §2, "Consent at planning and at sending").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, bindparam, exists, false, null, or_, select
from sqlalchemy.orm import Session

from broadcaster.db.models import Message
from broadcaster.i18n import N_
from broadcaster.vocabulary import MessageStatus
from consent.dnc import on_register_among
from consent.erasure import erased_of, subject_hash
from consent.exclusions import excluded_of
from consent.ledger import GRANT, states_of
from consent.models import CampaignExclusion, ConsentEvent, DoNotCallEntry, SubjectErasure, Suppression
from consent.policy import (
    CAP_WINDOW,
    REASON_TEXTS,
    Allowed,
    ConsentNeeded,
    ConsentState,
    Decision,
    Deferred,
    Excluded,
    PolicySettings,
    RecipientState,
    decide,
    next_allowed,
    rules_for,
    within_cap,
)
from consent.suppression import address_key, keys_of, suppressed_of

# Stored and counted in English; translated where shown (N_ marks them for the catalogue).
DEFERRED_BY_HOURS = N_("deferred: outside the purpose's send hours")
DEFERRED_BY_CAP = N_("deferred: per-recipient cap for 24 hours reached")

_PAGE = 500
_NOTHING_KNOWN = RecipientState()


@dataclass(frozen=True)
class PolicyScope:
    """Whose messages are being judged: one purpose on one channel, for one campaign (None: no list)."""

    purpose: str
    channel: str
    campaign_id: str | None
    tz: ZoneInfo
    settings: PolicySettings
    erasure_key: str = ""
    """Keys the hashes of people erased on request, who count as having withdrawn ("": none are looked up)."""


@dataclass(frozen=True)
class Verdict:
    """What the policy says of one message: excluded (``exclusion`` is the stored reason), or sent no
    earlier than ``not_before`` (None: now), ``deferral`` saying why when the policy moved it."""

    exclusion: str | None = None
    not_before: datetime | None = None
    deferral: str | None = None


def verdicts(
    session: Session,
    scope: PolicyScope,
    addresses: Sequence[str],
    *,
    at: datetime,
    skip_ids: Collection[int] = (),
) -> list[Verdict]:
    """One verdict per address, in order, for messages meant to go at ``at`` (aware).

    An address that comes twice has the first counted against its cap. ``skip_ids``: messages not to count
    as recent sends (the window being judged, already claimed)."""
    states = recipient_states(session, scope, addresses, at=at, skip_ids=skip_ids)
    allowed_here: dict[str, list[datetime]] = {}  # by address_key: what this call lets go at ``at``
    # Almost every address has the same state (no consent recorded, no list, no recent send): the policy
    # is asked once per distinct state, which holds all the decision reads.
    judged: dict[RecipientState, tuple[Decision, Verdict]] = {}
    # Without a cap on the channel a send let go here changes no later verdict: no key to keep.
    capped = scope.channel in rules_for(scope.purpose, scope.settings).caps_per_24h
    found: list[Verdict] = []
    for address in addresses:
        state = states[address]
        key = address_key(scope.channel, address) if capped else ""
        if capped and key in allowed_here:
            state = replace(state, recent_sends=(*state.recent_sends, *allowed_here[key]))
        known = judged.get(state)
        if known is None:
            known = judged[state] = _judged(scope, state, at)
        found.append(known[1])
        if capped and isinstance(known[0], Allowed):
            allowed_here.setdefault(key, []).append(at)
    return found


def _judged(scope: PolicyScope, state: RecipientState, at: datetime) -> tuple[Decision, Verdict]:
    decision = decide(
        state, now=at, purpose=scope.purpose, channel=scope.channel, tz=scope.tz, settings=scope.settings
    )
    return decision, _verdict(decision, scope, state, at)


def _verdict(decision: Decision, scope: PolicyScope, state: RecipientState, at: datetime) -> Verdict:
    if isinstance(decision, Excluded):
        return Verdict(exclusion=REASON_TEXTS[decision.reason])
    if isinstance(decision, Deferred):
        # By the cap when it is still full once the send hours open; else only the hours held it back.
        opens = next_allowed(at, scope.purpose, scope.channel, scope.tz, scope.settings)
        free = within_cap(state.recent_sends, opens, scope.purpose, scope.channel, scope.settings)
        why = DEFERRED_BY_HOURS if free else DEFERRED_BY_CAP
        return Verdict(not_before=decision.until, deferral=why)
    return Verdict()


def recipient_states(
    session: Session,
    scope: PolicyScope,
    addresses: Sequence[str],
    *,
    at: datetime,
    skip_ids: Collection[int] = (),
) -> dict[str, RecipientState]:
    """Each address's ``RecipientState``: only the lookups the purpose's rules need on this channel."""
    rules = rules_for(scope.purpose, scope.settings)
    channel = scope.channel
    wanted = list(dict.fromkeys(addresses))
    if len(wanted) == 1:  # the single-message API: one query instead of one per lookup
        [address] = wanted
        state = _one_state(session, scope, address, at=at, skip_ids=skip_ids)
        return {address: state}
    by_key = keys_of(channel, wanted)  # each address's key worked out once for every lookup
    consent: dict[str, ConsentState] = {}
    if rules.consent is not ConsentNeeded.NONE:
        consent = states_of(session, channel, scope.purpose, by_key)
        if scope.erasure_key:
            # Their ledger went with the erasure; the tombstone keeps the refusal (docs/domain.md §1.2).
            erased = erased_of(session, secret=scope.erasure_key, channel=channel, by_key=by_key)
            consent.update(dict.fromkeys(erased, ConsentState.WITHDRAWN))
    suppressed = suppressed_of(session, channel=channel, by_key=by_key)
    on_list: set[str] = set()
    if scope.campaign_id is not None:
        on_list = excluded_of(session, campaign_id=scope.campaign_id, channel=channel, by_key=by_key)
    do_not_call: set[str] = set()
    if channel in rules.dnc_channels:
        do_not_call = on_register_among(session, wanted)
    sends: dict[str, list[datetime]] = {}
    if channel in rules.caps_per_24h:
        sends = recent_sends(session, scope, list(by_key), since=at - CAP_WINDOW, skip_ids=skip_ids)
    found: dict[str, RecipientState] = {}
    for key, addresses in by_key.items():
        for address in addresses:
            if not (address in consent or address in suppressed or address in do_not_call
                    or address in on_list or key in sends):  # fmt: skip
                found[address] = _NOTHING_KNOWN  # most of a city: one shared state, not one each
                continue
            found[address] = RecipientState(
                consent=consent.get(address, ConsentState.UNKNOWN),
                suppressed=address in suppressed,
                on_do_not_call=address in do_not_call,
                on_campaign_list=address in on_list,
                recent_sends=tuple(sends.get(key, ())),
            )
    return found


def _one_state(
    session: Session, scope: PolicyScope, address: str, *, at: datetime, skip_ids: Collection[int]
) -> RecipientState:
    """``recipient_states`` of one address in one round trip: each lookup of the batch path (ledger,
    erasure, suppression, campaign list, do-not-call) as a scalar subquery on the same indexes, then the
    recent sends only when the purpose caps this channel. Same answers, same rules (test_eligibility checks
    both paths side by side)."""
    rules = rules_for(scope.purpose, scope.settings)
    channel = scope.channel
    key = address_key(channel, address)
    consent_needed = rules.consent is not ConsentNeeded.NONE
    erasure = consent_needed and bool(scope.erasure_key)
    on_list = scope.campaign_id is not None
    dnc = channel in rules.dnc_channels
    params = {"channel": channel, "key": key, "purpose": scope.purpose, "phone": address,
              "campaign_id": scope.campaign_id,
              "hash": subject_hash(scope.erasure_key, channel, address) if erasure else ""}  # fmt: skip
    row = session.execute(_lookups(consent_needed, erasure, on_list, dnc), params).one()
    action, is_erased, is_suppressed, is_on_list, is_on_register = row
    consent = ConsentState.UNKNOWN
    if action is not None:
        consent = ConsentState.GRANTED if action == GRANT else ConsentState.WITHDRAWN
    if is_erased:
        consent = ConsentState.WITHDRAWN
    sends: list[datetime] = []
    if channel in rules.caps_per_24h:
        found = recent_sends(session, scope, [address], since=at - CAP_WINDOW, skip_ids=skip_ids)
        sends = found.get(key, [])
    return RecipientState(
        consent=consent,
        suppressed=bool(is_suppressed),
        on_do_not_call=bool(is_on_register),
        on_campaign_list=bool(is_on_list),
        recent_sends=tuple(sends),
    )


@cache
def _lookups(consent: bool, erasure: bool, on_list: bool, dnc: bool) -> Select[Any]:
    """The one-address statement for the lookups a purpose needs (built once per combination, so its
    compiled form is reused); a lookup not needed is a constant."""
    no = false()
    latest = (
        select(ConsentEvent.action)
        .where(
            ConsentEvent.channel == bindparam("channel"),
            ConsentEvent.address == bindparam("key"),
            ConsentEvent.purpose == bindparam("purpose"),
        )
        .order_by(ConsentEvent.recorded_at.desc(), ConsentEvent.id.desc())
        .limit(1)
        .scalar_subquery()
        if consent
        else null()
    )
    erased = exists().where(SubjectErasure.subject_hash == bindparam("hash")) if erasure else no
    suppressed = exists().where(
        Suppression.channel == bindparam("channel"), Suppression.address == bindparam("key")
    )
    listed = (
        exists().where(
            CampaignExclusion.campaign_id == bindparam("campaign_id"),
            CampaignExclusion.channel == bindparam("channel"),
            CampaignExclusion.address == bindparam("key"),
        )
        if on_list
        else no
    )
    registered = exists().where(DoNotCallEntry.phone == bindparam("phone")) if dnc else no
    return select(latest.label("action"), erased, suppressed, listed, registered)


# Built once: its compiled form is reused by every page and every single message.
_RECENT = select(Message.address_key, Message.sent_at, Message.claimed_at).where(
    Message.channel == bindparam("channel"),
    Message.address_key.in_(bindparam("keys", expanding=True)),
    Message.purpose == bindparam("purpose"),
    or_(
        Message.sent_at > bindparam("since"),
        and_(Message.status == MessageStatus.SENDING, Message.claimed_at > bindparam("since")),
    ),
)


def recent_sends(
    session: Session,
    scope: PolicyScope,
    addresses: Sequence[str],
    *,
    since: datetime,
    skip_ids: Collection[int] = (),
) -> dict[str, list[datetime]]:
    """When each address (by ``address_key``) got messages of the purpose on the channel after ``since``.

    A message another worker has claimed but not finished counts from its claim: it may be on the wire now,
    and a cap must not be passed by two windows at once."""
    keys = list(dict.fromkeys(address_key(scope.channel, a) for a in addresses))
    found: dict[str, list[datetime]] = {}
    for start in range(0, len(keys), _PAGE):
        query = _RECENT
        if skip_ids:
            query = query.where(Message.id.not_in(list(skip_ids)))
        params = {"channel": scope.channel, "keys": keys[start : start + _PAGE], "purpose": scope.purpose,
                  "since": since}  # fmt: skip
        for key, sent_at, claimed_at in session.execute(query, params):
            moment = sent_at or claimed_at
            if key is not None and moment is not None:
                found.setdefault(key, []).append(moment)
    return found
