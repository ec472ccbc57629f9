"""The consent policy once more, right before a claimed window is composed: a withdrawal, a suppression or a
list that came after planning, and the send hours and caps as they stand now (docs/architecture.md §2).

Excluded rows become ``suppressed`` with their reason; deferred ones go back to ``queued`` with the policy's
``not_before`` and no chunk, for the tick to cut anew (as ``claims.release`` does), their attempt given back
(as ``claims.unclaim`` does). Both are guarded on ``status = 'sending' AND handed_at IS NULL``. Rows without a
purpose (test sends, an opt-out's confirmation) are never screened. A push message is judged by its person, as
the planner judged it (``audience.push_person``, kept in its ``address_key``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.db.models import Message
from broadcaster.eligibility import PolicyScope, Verdict, verdicts
from broadcaster.outbox.composition import VersionCache
from broadcaster.settings import Settings
from broadcaster.vocabulary import MessageStatus
from channels.base import Channel


def screen_claimed(
    sessions: sessionmaker[Session],
    readers: sessionmaker[Session],
    rows: Sequence[Any],
    *,
    versions: VersionCache,
    settings: Settings,
    now: datetime,
) -> list[Any]:
    """The claimed rows (as ``claims.claim`` returns them) that may be written now; the others are stopped
    or deferred, committed, before this returns."""
    groups: dict[tuple[str, str, str | None, int | None], list[Any]] = defaultdict(list)
    for row in rows:
        if row.purpose is not None:
            groups[(row.channel, row.purpose, row.campaign_id, row.version_id)].append(row)
    if not groups:
        return list(rows)
    claimed_ids = [row.id for row in rows]
    judged: dict[int, Verdict] = {}
    policy = settings.consent.policy()
    with readers() as session:
        for (channel, purpose, campaign_id, version_id), group in groups.items():
            definition = versions.definition(session, version_id) if version_id is not None else None
            scope = PolicyScope(
                purpose=purpose,
                channel=channel,
                campaign_id=campaign_id,
                tz=definition.zone(settings.timezone) if definition else ZoneInfo(settings.timezone),
                settings=policy,
                erasure_key=settings.security.erasure_key(),
            )
            found = verdicts(session, scope, [_judged(row) for row in group], at=now, skip_ids=claimed_ids)
            judged.update((row.id, verdict) for row, verdict in zip(group, found, strict=True))
    stopped = {i for i, v in judged.items() if v.exclusion is not None or v.not_before is not None}
    if stopped:
        with sessions.begin() as session:
            _apply(session, {i: judged[i] for i in stopped}, now=now)
    return [row for row in rows if row.id not in stopped]


def _judged(row: Any) -> str:
    # As the planner judged it: a push message by its person (``audience.push_person``, kept in address_key).
    if row.channel == Channel.PUSH and row.address_key:
        return str(row.address_key)
    return str(row.address)


def _apply(session: Session, stopped: dict[int, Verdict], *, now: datetime) -> None:
    """One guarded UPDATE per reason and per deferral moment (a window holds a few of each at most)."""
    excluded: dict[str, list[int]] = defaultdict(list)
    deferred: dict[tuple[datetime, str | None], list[int]] = defaultdict(list)
    for message_id, verdict in stopped.items():
        if verdict.exclusion is not None:
            excluded[verdict.exclusion].append(message_id)
        elif verdict.not_before is not None:
            deferred[(verdict.not_before, verdict.deferral)].append(message_id)
    unwritten = (Message.status == MessageStatus.SENDING, Message.handed_at.is_(None))
    for reason, ids in excluded.items():
        session.execute(
            update(Message)
            .where(Message.id.in_(ids), *unwritten)
            .values(status=MessageStatus.SUPPRESSED, reason=reason, final_at=now)
        )
    for (until, why), ids in deferred.items():
        session.execute(
            update(Message)
            .where(Message.id.in_(ids), *unwritten)
            .values(
                status=MessageStatus.QUEUED,
                not_before=until,
                reason=why,
                chunk_id=None,
                attempts=Message.attempts - 1,
                claimed_at=None,
                claimed_by=None,
            )
        )
