"""Daily rollups: the messages, reach and opt-outs of each local day counted per slice, so that a report reads a
few thousand rows instead of millions of messages, and a closed period keeps its numbers after retention or
erasure (docs/plan.md, "Rollups").

A rebuild deletes and re-inserts each day of the range in the caller's transaction, so running it twice gives
the same rows. Days of a half-year that ended more than ``[reports] freeze_grace_days`` ago are frozen at their
first rebuild after that and skipped from then on; ``refreeze`` (an admin's, audited by the caller) rebuilds them.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.db.engine import readers_of
from broadcaster.db.models import (
    CampaignVersion,
    Message,
    RollupDay,
    RollupFrozenDay,
    RollupOptOut,
    RollupReach,
)
from broadcaster.outbox.fallbacks import is_unneeded_fallback
from broadcaster.reporting.periods import Period, half_year
from broadcaster.settings import Settings
from broadcaster.vocabulary import MessageKind, MessageStatus
from consent.models import ConsentEvent

__all__ = [
    "BUCKETS",
    "NO_ITEM",
    "RollupResult",
    "data_range",
    "period_of_day",
    "person_key",
    "rebuild",
    "rebuild_in_steps",
]

# Upper bounds (seconds) of the time-to-delivery buckets; the last bucket is everything slower. A median or p95
# read from them is the upper bound of the bucket the quantile falls in: never below the true value, at most
# 1.67× it from 3 s to 3 h and 2× up to 48 h (docs/plan.md, "Rollups").
BUCKETS: tuple[int, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600,
    5400, 7200, 10800, 21600, 43200, 86400, 172800,
)  # fmt: skip
NO_ITEM = ""  # a campaign that names no plan item, or a one-off message
_REPORTED_KINDS = (MessageKind.CAMPAIGN, MessageKind.FALLBACK, MessageKind.POST)  # not tests, not system mail
_REASON_LENGTH = 200
STEP_DAYS = 7  # days per transaction in rebuild_in_steps


@dataclass
class _Counts:
    messages: int = 0
    accepted: int = 0
    sms_parts: int = 0
    cost: Decimal = Decimal(0)
    delivery_seconds: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))


@dataclass(frozen=True)
class RollupResult:
    rebuilt: tuple[date, ...]
    skipped_frozen: tuple[date, ...]
    newly_frozen: tuple[date, ...]


def period_of_day(day: date, settings: Settings) -> Period:
    """The half-year (with the settings' cut-offs) that ``day`` is reported in."""
    for year, half in ((day.year, 1), (day.year, 2), (day.year + 1, 1)):
        period = half_year(year, half, settings.reports)
        if day in period:
            return period
    raise AssertionError(f"no half-year holds {day}")  # the half-years tile every year


def person_key(contact_id: int | None, channel: str, address_key: str | None, secret: str) -> str:
    """Who a message reached, without the address: the contact, else a keyed hash of the address key (an erased
    message's key is its tombstone marker, so the person still counts once)."""
    if contact_id is not None:
        return f"c:{contact_id}"
    key = f"{channel}:{address_key or ''}".encode()
    return "h:" + hmac.new(secret.encode(), key, hashlib.sha256).hexdigest()[:40]


def _bucket(seconds: float) -> int:
    return bisect.bisect_left(BUCKETS, max(seconds, 0.0))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def _bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    first = datetime.combine(start, time(), zone).astimezone(UTC)
    last = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
    return first, last


def data_range(session: Session, zone: ZoneInfo) -> tuple[date, date] | None:
    """The first and last local day with a message or a withdrawal (None: neither)."""
    moments = [
        *session.execute(select(func.min(Message.created_at), func.max(Message.created_at))).one(),
        *session.execute(
            select(func.min(ConsentEvent.recorded_at), func.max(ConsentEvent.recorded_at))
        ).one(),
    ]
    days = [_utc(moment).astimezone(zone).date() for moment in moments if moment is not None]
    return (min(days), max(days)) if days else None


def _with_data(session: Session, zone: ZoneInfo, start: date, end: date) -> tuple[date, date] | None:
    """The part of ``start``..``end`` between the first and last day with data (None: no such part)."""
    found = data_range(session, zone)
    if found is None or max(start, found[0]) > min(end, found[1]):
        return None
    return max(start, found[0]), min(end, found[1])


def rebuild(
    session: Session,
    settings: Settings,
    *,
    start: date,
    end: date,
    clock: Clock,
    actor: str = "system",
    refreeze: bool = False,
) -> RollupResult:
    """Rebuild the rollups of the local days ``start``..``end`` in the caller's transaction, over the part of
    the range that has data (an open range ends where the data ends, and never after today)."""
    zone = ZoneInfo(settings.timezone)
    today = clock.now().astimezone(zone).date()
    span = _with_data(session, zone, start, min(end, today))
    if span is None:
        return RollupResult((), (), ())
    start, end = span
    frozen = set(session.scalars(select(RollupFrozenDay.day).where(RollupFrozenDay.day.between(start, end))))
    days = [day for day in _days(start, end) if refreeze or day not in frozen]
    if not days:
        return RollupResult((), tuple(sorted(frozen)), ())
    secret = settings.security.erasure_key() or "broadcaster-reach"
    items = _plan_items(session)
    for day in days:  # one day at a time: memory bounded by a day's messages, not the range's
        _rebuild_day(session, day, items=items, zone=zone, secret=secret)
    closing = today - timedelta(days=settings.reports.freeze_grace_days)
    newly = [day for day in days if day not in frozen and period_of_day(day, settings).end < closing]
    if newly:
        session.execute(
            insert(RollupFrozenDay),
            [{"day": day, "frozen_at": clock.now(), "frozen_by": actor} for day in newly],
        )
    skipped = () if refreeze else tuple(sorted(frozen))
    return RollupResult(tuple(days), skipped, tuple(newly))


def rebuild_in_steps(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    start: date,
    end: date,
    clock: Clock,
    actor: str = "system",
    refreeze: bool = False,
) -> RollupResult:
    """``rebuild`` a week per transaction: a long range never holds SQLite's write lock for long, so a running
    engine's writers wait at most one week's rebuild."""
    zone = ZoneInfo(settings.timezone)
    with readers_of(sessions)() as session:
        span = _with_data(session, zone, start, min(end, clock.now().astimezone(zone).date()))
    if span is None:
        return RollupResult((), (), ())
    first, last = span
    rebuilt: list[date] = []
    skipped: list[date] = []
    newly: list[date] = []
    while first <= last:
        until = min(first + timedelta(days=STEP_DAYS - 1), last)
        with sessions.begin() as session:
            step = rebuild(
                session, settings, start=first, end=until, clock=clock, actor=actor, refreeze=refreeze
            )
        rebuilt += step.rebuilt
        skipped += step.skipped_frozen
        newly += step.newly_frozen
        first = until + timedelta(days=1)
    return RollupResult(tuple(rebuilt), tuple(skipped), tuple(newly))


def _rebuild_day(session: Session, day: date, *, items: dict[int, str], zone: ZoneInfo, secret: str) -> None:
    for table in (RollupDay, RollupReach, RollupOptOut):
        session.execute(delete(table).where(table.day == day))
    first, last = _bounds(day, day, zone)
    counts: dict[tuple[date, str, int, str, str, str, str, str], _Counts] = defaultdict(_Counts)
    reach: set[tuple[date, str, str, str, str]] = set()
    rows = session.execute(
        select(
            Message.campaign_id, Message.run_id, Message.version_id, Message.purpose,
            Message.channel, Message.status, Message.reason, Message.segments, Message.cost, Message.sent_at,
            Message.final_at, Message.contact_id, Message.address_key,
        )
        .where(Message.created_at >= first, Message.created_at < last, Message.kind.in_(_REPORTED_KINDS))
        .execution_options(yield_per=20_000)
    )  # fmt: skip
    for (campaign, run, version, purpose, channel, status, reason, segments, cost, sent_at,
         final_at, contact_id, address_key) in rows:  # fmt: skip
        item = items.get(version, NO_ITEM) if version is not None else NO_ITEM
        status = MessageStatus(status)
        # Why a message was kept back; a fallback not needed once its primary was delivered counts so too.
        kept_back = status is MessageStatus.SUPPRESSED or (
            status is MessageStatus.CANCELLED and is_unneeded_fallback(reason)
        )
        why = (reason or "")[:_REASON_LENGTH] if kept_back else ""
        key = (day, campaign or "", run or 0, item, purpose or "", channel, status.value, why)
        slot = counts[key]
        slot.messages += 1
        slot.cost += Decimal(cost or 0)
        if sent_at is not None:
            slot.accepted += 1
            slot.sms_parts += (segments or 0) if channel == "sms" else 0
            reach.add(
                (day, item, channel, purpose or "", person_key(contact_id, channel, address_key, secret))
            )
            if status is MessageStatus.DELIVERED and final_at is not None:
                slot.delivery_seconds[_bucket((_utc(final_at) - _utc(sent_at)).total_seconds())] += 1
    if counts:
        session.execute(
            insert(RollupDay),
            [
                dict(zip(("day", "campaign_id", "run_id", "plan_item", "purpose", "channel", "status", "reason"),
                         key, strict=True))
                | {"messages": c.messages, "accepted": c.accepted, "sms_parts": c.sms_parts, "cost": c.cost,
                   "delivery_seconds": c.delivery_seconds}
                for key, c in counts.items()
            ],
        )  # fmt: skip
    if reach:
        session.execute(
            insert(RollupReach),
            [dict(zip(("day", "plan_item", "channel", "purpose", "person"), r, strict=True)) for r in reach],
        )
    _rebuild_opt_outs(session, first, last, zone=zone)


def _rebuild_opt_outs(session: Session, first: datetime, last: datetime, *, zone: ZoneInfo) -> None:
    opt_outs: dict[tuple[date, str, str], int] = defaultdict(int)
    events = session.execute(
        select(ConsentEvent.recorded_at, ConsentEvent.channel, ConsentEvent.purpose).where(
            ConsentEvent.action == "withdraw",
            ConsentEvent.recorded_at >= first,
            ConsentEvent.recorded_at < last,
        )
    )
    for recorded, channel, purpose in events:
        opt_outs[(_utc(recorded).astimezone(zone).date(), channel, purpose)] += 1
    if opt_outs:
        session.execute(
            insert(RollupOptOut),
            [
                {"day": day, "channel": channel, "purpose": purpose, "count": n}
                for (day, channel, purpose), n in opt_outs.items()
            ],
        )


def _plan_items(session: Session) -> dict[int, str]:
    """Each campaign version's plan item (the campaign file's ``plan_item``)."""
    found: dict[int, str] = {}
    for version_id, definition in session.execute(select(CampaignVersion.id, CampaignVersion.definition)):
        item = definition.get("plan_item") if isinstance(definition, dict) else None
        found[version_id] = item if isinstance(item, str) else NO_ITEM
    return found
