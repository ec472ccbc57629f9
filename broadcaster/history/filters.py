"""What a history query asks for (campaign, run, recipient, statuses, channel, period) and the SQL it means."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select, union

from broadcaster.audit.hashes import address_hash
from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.phones import PhoneError, parse_phone
from broadcaster.db.models import Message
from broadcaster.errors import UserError
from broadcaster.i18n import translate
from broadcaster.vocabulary import MessageStatus
from channels.base import Channel
from consent.suppression import address_key


class PeriodOn(enum.StrEnum):
    """Which moment of a message the period bounds: when it was planned, accepted, or settled."""

    CREATED = "created"
    SENT = "sent"
    FINAL = "final"


_PERIOD_COLUMNS = {
    PeriodOn.CREATED: Message.created_at,
    PeriodOn.SENT: Message.sent_at,
    PeriodOn.FINAL: Message.final_at,
}


@dataclass(frozen=True)
class Recipient:
    """A recipient as stored: the channel and the address key (e-mail lower-cased, phone in E.164), and the
    keyed hash of that key (``audit.hashes.address_hash``) once ``keyed`` gave it the installation's key: what
    is left of the address after retention removed it."""

    channel: str
    key: str
    hashed: str | None = None

    def keyed(self, key: str) -> Recipient:
        """With the keyed hash under ``key`` (``settings.security.erasure_key()``; none when it is empty)."""
        return replace(self, hashed=address_hash(key, self.channel, self.key))


def recipient(raw: str) -> Recipient:
    """The recipient an officer typed (``0905 123 456``, ``An.Nguyen@Danang.gov.vn``), in the stored form."""
    text = raw.strip()
    if "@" in text:
        try:
            return Recipient(Channel.EMAIL, address_key(Channel.EMAIL, normalize_email(text)))
        except EmailError as exc:
            raise UserError(f"--recipient '{raw}': {translate(exc.reason)}") from None
    try:
        return Recipient(Channel.SMS, address_key(Channel.SMS, parse_phone(text).e164))
    except PhoneError as exc:
        raise UserError(f"--recipient '{raw}': {translate(exc.reason)}") from None


@dataclass(frozen=True)
class HistoryFilter:
    """Every field narrows; an empty filter is every message. ``period_from`` is inclusive, ``period_to``
    exclusive, both on the moment ``period_on`` names (a message without that moment is outside any period)."""

    campaign: str | None = None
    run: int | None = None
    recipient: Recipient | None = None
    statuses: tuple[MessageStatus, ...] = ()
    channel: str | None = None
    period_from: datetime | None = None
    period_to: datetime | None = None
    period_on: PeriodOn = PeriodOn.CREATED
    # Only messages with a smaller id: the cursor of a page listed newest first (the REST API's pages).
    before_id: int | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.campaign is not None:
            where.append(Message.campaign_id == self.campaign)
        if self.run is not None:
            where.append(Message.run_id == self.run)
        if self.recipient is not None:
            # (channel, address_key) and (channel, address_hash) are indexed: opt-outs and subject requests
            # find an address the same way; the hash still finds a message whose address retention removed.
            channel = Message.channel == self.recipient.channel
            same = and_(channel, Message.address_key == self.recipient.key)
            hashed = self.recipient.hashed
            if hashed is None:
                where.append(same)
            else:
                # The ids of the two index lookups: an OR would leave SQLite's planner (no ANALYZE statistics)
                # only the channel prefix, a scan of every message of the channel.
                by_hash = and_(channel, Message.address_hash == hashed)
                where.append(
                    Message.id.in_(union(select(Message.id).where(same), select(Message.id).where(by_hash)))
                )
        if self.statuses:
            where.append(Message.status.in_(self.statuses))
        if self.channel is not None:
            where.append(Message.channel == self.channel)
        moment = _PERIOD_COLUMNS[self.period_on]
        if self.period_from is not None:
            where.append(moment >= self.period_from)
        if self.period_to is not None:
            where.append(moment < self.period_to)
        if self.before_id is not None:
            where.append(Message.id < self.before_id)
        return where

    def keyed(self, key: str) -> HistoryFilter:
        """The filter whose recipient also matches by keyed hash (see ``Recipient.keyed``)."""
        return replace(self, recipient=self.recipient.keyed(key)) if self.recipient else self

    def as_dict(self) -> dict[str, object]:
        """For the audit trail of an unmasked listing (``audit.record`` masks the recipient's address)."""
        return {
            "campaign": self.campaign,
            "run": self.run,
            "recipient": self.recipient.key if self.recipient else None,
            "statuses": [s.value for s in self.statuses],
            "channel": self.channel,
            "period_from": self.period_from.isoformat() if self.period_from else None,
            "period_to": self.period_to.isoformat() if self.period_to else None,
            "period_on": self.period_on.value,
        }
