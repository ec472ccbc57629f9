"""An operator's hand on the outbox: release held ``unknown`` messages, retry failed ones, drop waiting ones.

Each operation is one guarded ``UPDATE`` whose ``WHERE status IN (…)`` comes from the transition table
(``broadcaster.outbox.status``), so a message that moved on meanwhile (a late receipt, a worker's claim) is
left alone; each is audited with its filters, reason and count. A dry run counts and changes nothing.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.clock import Clock
from broadcaster.db.models import Campaign, CampaignRun, Message, MessagePart, User
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.outbox.status import sources_for
from broadcaster.vocabulary import CampaignState, MessageStatus, RunStatus

S = MessageStatus
ID_BATCH = 500


class Operation(enum.StrEnum):
    RELEASE = "release"  # a held ``unknown`` goes back to the queue: sent again, perhaps a second time
    RETRY = "retry"  # a technical or temporary failure is queued again as a fresh attempt
    DROP = "drop"  # a held, unknown or queued message is cancelled and never sent


@dataclass(frozen=True)
class Move:
    sources: frozenset[MessageStatus]
    target: MessageStatus


MOVES: dict[Operation, Move] = {
    Operation.RELEASE: Move(frozenset({S.UNKNOWN}), S.QUEUED),
    Operation.RETRY: Move(frozenset({S.TECHNICAL_FAILURE, S.TEMPORARY_FAILURE}), S.QUEUED),
    Operation.DROP: Move(frozenset({S.QUEUED, S.UNKNOWN}), S.CANCELLED),
}


@dataclass(frozen=True)
class MessageFilter:
    """Which messages an operation touches; at least one filter is required."""

    campaign: str | None = None
    run: int | None = None
    status: MessageStatus | None = None
    channel: str | None = None
    provider: str | None = None
    ids: tuple[int, ...] = ()

    def is_empty(self) -> bool:
        return not any(value not in (None, ()) for value in asdict(self).values())

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, ())}

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        for column, value in (
            (Message.campaign_id, self.campaign),
            (Message.run_id, self.run),
            (Message.status, self.status),
            (Message.channel, self.channel),
            (Message.provider, self.provider),
        ):
            if value is not None:
                found.append(column == value)
        if self.ids:
            found.append(Message.id.in_(self.ids))
        return found


@dataclass
class OperationReport:
    operation: Operation
    dry_run: bool
    filters: dict[str, Any]
    # (status, channel) → messages, as found before the change
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    changed: int = 0

    @property
    def matched(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation.value,
            "dry_run": self.dry_run,
            "filters": self.filters,
            "matched": self.matched,
            "changed": self.changed,
            "counts": [
                {"status": status, "channel": channel, "messages": n}
                for (status, channel), n in sorted(self.counts.items())
            ],
        }


def operate(
    session: Session,
    *,
    operation: Operation,
    filters: MessageFilter,
    actor: User,
    reason: str | None,
    clock: Clock,
    dry_run: bool = False,
) -> OperationReport:
    """Count the messages ``operation`` applies to under ``filters`` and, unless ``dry_run``, change them."""
    move = MOVES[operation]
    why = _checked_reason(operation, move, filters, reason=reason, dry_run=dry_run)
    where = _where(operation, move, filters)
    report = OperationReport(operation=operation, dry_run=dry_run, filters=filters.as_dict())
    rows = session.execute(
        select(Message.status, Message.channel, func.count())
        .where(*where)
        .group_by(Message.status, Message.channel)
    ).all()
    report.counts = Counter({(status.value, channel): n for status, channel, n in rows})
    if dry_run or not report.matched:
        return report
    now = clock.now()
    changed = (
        session.execute(
            update(Message).where(*where).values(**_values(operation, actor, why, now)).returning(Message.id)
        )
        .scalars()
        .all()
    )
    report.changed = len(changed)
    if move.target == S.QUEUED:
        _fresh_attempt(session, changed)
    audit.record(
        session,
        actor=actor.login,
        action=f"messages.{operation.value}",
        subject_type="campaign" if filters.campaign else "messages",
        subject_id=filters.campaign or "filter",
        at=now,
        reason=why,
        # Before (by status) and after (the target) of each message the decision moved, by id.
        details={
            "filters": report.filters,
            "count": report.changed,
            "by_status": _by_status(report),
            "to": move.target.value,
            "message_ids": sorted(changed),
        },
    )
    return report


def _checked_reason(
    operation: Operation, move: Move, filters: MessageFilter, *, reason: str | None, dry_run: bool
) -> str:
    """The reason, stripped, once the request makes sense; a dry run needs none."""
    if filters.is_empty():
        raise UserError(
            _(
                "say which messages to %(operation)s: --campaign, --run, --id, --status, --channel or --provider"
            )
            % {"operation": operation.value}
        )
    if filters.status is not None and filters.status not in move.sources:
        allowed = ", ".join(sorted(s.value for s in move.sources))
        raise UserError(
            _("%(operation)s applies to %(allowed)s messages, not %(status)s")
            % {"operation": operation.value, "allowed": allowed, "status": filters.status.value}
        )
    why = (reason or "").strip()
    if not dry_run and not why:
        raise UserError(
            _("%(operation)s needs a reason (--reason), kept in the audit trail; --dry-run only counts")
            % {"operation": operation.value}
        )
    return why


def _where(operation: Operation, move: Move, filters: MessageFilter) -> list[ColumnElement[bool]]:
    # The transition table is the guard: only statuses it lets reach the target are touched.
    where = [Message.status.in_(sorted(move.sources & sources_for(move.target))), *filters.conditions()]
    if move.target == S.QUEUED:
        # A cancelled campaign or run never sends again: its messages would wait in the queue for ever.
        where.append(
            or_(
                Message.campaign_id.is_(None),
                Message.campaign_id.not_in(
                    select(Campaign.id).where(Campaign.state == CampaignState.CANCELLED)
                ),
            )
        )
        where.append(
            or_(
                Message.run_id.is_(None),
                Message.run_id.not_in(
                    select(CampaignRun.id).where(CampaignRun.status == RunStatus.CANCELLED)
                ),
            )
        )
    return where


def _values(operation: Operation, actor: User, reason: str, now: datetime) -> dict[str, Any]:
    if operation == Operation.DROP:
        return {
            "status": S.CANCELLED,
            "hold": False,
            "reason": f"dropped by {actor.login}: {reason}",
            "final_at": now,
        }
    verb = "released" if operation == Operation.RELEASE else "retried"
    # A fresh attempt: the back-off starts again, the tick cuts it into a new chunk, nothing of the last
    # attempt (provider id, parts, error) is taken for this one's.
    return {
        "status": S.QUEUED,
        "hold": False,
        "chunk_id": None,
        "not_before": None,
        "attempts": 0,
        "claimed_at": None,
        "sent_at": None,
        "final_at": None,
        "provider_ref": None,
        "error_code": None,
        "parts_total": 0,
        "parts_delivered": 0,
        "reason": f"{verb} by {actor.login}: {reason}",
    }


def _fresh_attempt(session: Session, message_ids: Sequence[int]) -> None:
    """Forget the SMS parts of the last attempt, so that the new attempt's parts and receipts are recorded."""
    for start in range(0, len(message_ids), ID_BATCH):
        batch = message_ids[start : start + ID_BATCH]
        session.execute(delete(MessagePart).where(MessagePart.message_id.in_(batch)))
    _reopen_runs(session, message_ids)


def _reopen_runs(session: Session, message_ids: Sequence[int]) -> None:
    """A completed run has work again: it is sending until the tick finds it done once more."""
    runs: set[int] = set()
    for start in range(0, len(message_ids), ID_BATCH):
        batch = message_ids[start : start + ID_BATCH]
        runs.update(
            run
            for run in session.scalars(select(Message.run_id).where(Message.id.in_(batch)).distinct())
            if run
        )
    if runs:
        session.execute(
            update(CampaignRun)
            .where(
                CampaignRun.id.in_(runs),
                CampaignRun.status.in_([RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_HELD]),
            )
            .values(status=RunStatus.SENDING, finished_at=None)
        )


def _by_status(report: OperationReport) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for (status, _channel), n in report.counts.items():
        totals[status] += n
    return dict(sorted(totals.items()))
