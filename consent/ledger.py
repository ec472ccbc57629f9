"""The consent ledger: append-only grants and withdrawals per address × channel × purpose.

No function here updates or deletes a row: the latest event is the current state, and the whole history is the
proof of consent. Times come from the caller (consent never reads the clock) and the engine is never imported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.lookup import keys_among
from consent.models import ConsentEvent
from consent.policy import ConsentState
from consent.suppression import address_key, keys_of

# On push the address is the person's (their phone number, else their e-mail address): the engine judges
# every device of theirs by it (broadcaster/campaigns/audience.py, push_person).
CHANNELS = ("sms", "email", "push")
OFFICIAL_DUTY = "official_duty"
PUBLIC_INFORMATION = "public_information"
ADVERTISING = "advertising"
PURPOSES = (OFFICIAL_DUTY, PUBLIC_INFORMATION, ADVERTISING)
SOURCES = ("web_form", "sms_keyword", "email_link", "import", "staff", "city_app", "migration")
GRANT = "grant"
WITHDRAW = "withdraw"

# A notice version names a file (notices/<purpose>/<version>.md): no path separators, no "..".
_NOTICE_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LOOKUP_PAGE = 5000  # keys per look-up: one parameter whatever their number


class ConsentError(ValueError):
    """A consent event that cannot be recorded as asked; nothing was written.

    Its text is English, ``template % values``; the application shows it in its own language from those two
    (this package translates nothing: ``broadcaster/consent_texts.py`` lists the templates)."""

    def __init__(self, template: str, **values: object) -> None:
        super().__init__(template % values if values else template)
        self.template = template
        self.values = values


def notice_path(notices_dir: Path, purpose: str, version: str) -> Path:
    """The file holding the text of a notice version, e.g. ``notices/advertising/v1.md``."""
    return notices_dir / purpose / f"{version}.md"


def grant(
    session: Session,
    *,
    channel: str,
    address: str,
    purpose: str,
    source: str,
    notice_version: str,
    notices_dir: Path,
    recorded_by: str,
    at: datetime,
    evidence: str | None = None,
    reason: str | None = None,
) -> ConsentEvent:
    """Record consent given after the person was shown ``notice_version`` (which must exist as a file)."""
    _check(channel=channel, purpose=purpose, source=source, reason=reason, recorded_by=recorded_by)
    if not _NOTICE_VERSION.fullmatch(notice_version) or ".." in notice_version:
        raise ConsentError(
            "notice version %(version)s is not valid: use letters, digits, '.', '_', '-'",
            version=repr(notice_version),
        )
    path = notice_path(notices_dir, purpose, notice_version)
    if not path.is_file():
        raise ConsentError(
            "notice version %(version)s does not exist: %(path)s is missing",
            version=repr(notice_version),
            path=path,
        )
    return _append(
        session,
        channel=channel,
        address=address,
        purpose=purpose,
        action=GRANT,
        source=source,
        notice_version=notice_version,
        evidence=evidence,
        reason=reason,
        recorded_by=recorded_by,
        at=at,
    )


def withdraw(
    session: Session,
    *,
    channel: str,
    address: str,
    purpose: str,
    source: str,
    recorded_by: str,
    at: datetime,
    evidence: str | None = None,
    reason: str | None = None,
    notice_version: str | None = None,
) -> ConsentEvent:
    """Record that the person no longer agrees; effective for every message not yet handed to a provider."""
    _check(channel=channel, purpose=purpose, source=source, reason=reason, recorded_by=recorded_by)
    return _append(
        session,
        channel=channel,
        address=address,
        purpose=purpose,
        action=WITHDRAW,
        source=source,
        notice_version=notice_version,
        evidence=evidence,
        reason=reason,
        recorded_by=recorded_by,
        at=at,
    )


def history(session: Session, channel: str, address: str) -> list[ConsentEvent]:
    """Every event for the address on the channel, all purposes, oldest first."""
    query = (
        select(ConsentEvent)
        .where(ConsentEvent.channel == channel, ConsentEvent.address == address_key(channel, address))
        .order_by(ConsentEvent.recorded_at, ConsentEvent.id)
    )
    return list(session.scalars(query))


def current(session: Session, channel: str, address: str, purpose: str) -> bool | None:
    """True when the latest event is a grant, False when a withdrawal, None when nothing was ever recorded."""
    event = latest(session, channel, address, purpose)
    return None if event is None else event.action == GRANT


def latest(session: Session, channel: str, address: str, purpose: str) -> ConsentEvent | None:
    """The event that says the current state for the address, channel and purpose (None: never recorded)."""
    query = (
        select(ConsentEvent)
        .where(
            ConsentEvent.channel == channel,
            ConsentEvent.address == address_key(channel, address),
            ConsentEvent.purpose == purpose,
        )
        .order_by(ConsentEvent.recorded_at.desc(), ConsentEvent.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def states_among(
    session: Session, channel: str, purpose: str, addresses: Iterable[str]
) -> dict[str, ConsentState]:
    """The ledger's latest word for each of ``addresses`` (as given) on ``purpose``, one query per page;
    an address never recorded is left out (its state is ``ConsentState.UNKNOWN``)."""
    return states_of(session, channel, purpose, keys_of(channel, addresses))


def states_of(
    session: Session, channel: str, purpose: str, by_key: Mapping[str, Iterable[str]]
) -> dict[str, ConsentState]:
    """``states_among`` of addresses already grouped by key (``keys_of``)."""
    wanted = list(by_key)
    states: dict[str, ConsentState] = {}
    for start in range(0, len(wanted), _LOOKUP_PAGE):
        latest: dict[str, str] = {}
        query = select(ConsentEvent.address, ConsentEvent.action).where(
            ConsentEvent.channel == channel, ConsentEvent.purpose == purpose
        )
        page = wanted[start : start + _LOOKUP_PAGE]
        query = keys_among(session, query, ConsentEvent.address, page)
        for key, action in session.execute(query.order_by(ConsentEvent.recorded_at, ConsentEvent.id)):
            latest[key] = action  # ordered oldest first: the last one seen wins
        for key, action in latest.items():
            state = ConsentState.GRANTED if action == GRANT else ConsentState.WITHDRAWN
            states.update(dict.fromkeys(by_key[key], state))
    return states


def withdrawn_among(session: Session, channel: str, purpose: str, addresses: Iterable[str]) -> set[str]:
    """The subset of ``addresses`` (as given) whose latest event for ``purpose`` is a withdrawal."""
    states = states_among(session, channel, purpose, addresses)
    return {address for address, state in states.items() if state is ConsentState.WITHDRAWN}


def _check(*, channel: str, purpose: str, source: str, reason: str | None, recorded_by: str) -> None:
    if channel not in CHANNELS:
        raise ConsentError(
            "unknown channel %(channel)s; use one of: %(known)s",
            channel=repr(channel),
            known=", ".join(CHANNELS),
        )
    if purpose not in PURPOSES:
        raise ConsentError(
            "unknown purpose %(purpose)s; use one of: %(known)s",
            purpose=repr(purpose),
            known=", ".join(PURPOSES),
        )
    if source not in SOURCES:
        raise ConsentError(
            "unknown source %(source)s; use one of: %(known)s", source=repr(source), known=", ".join(SOURCES)
        )
    if source == "staff" and not (reason and reason.strip()):
        raise ConsentError("a change made by staff needs a reason")
    if not recorded_by.strip():
        raise ConsentError("recorded_by must name the user or component that records the event")


def _append(
    session: Session, *, channel: str, address: str, at: datetime, **fields: str | None
) -> ConsentEvent:
    event = ConsentEvent(channel=channel, address=address_key(channel, address), recorded_at=at, **fields)
    session.add(event)
    session.flush()
    return event
