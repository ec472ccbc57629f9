"""An opt-out or a suppression takes effect at once: the address's messages not yet written to a provider
stop, in the same transaction that stores the refusal.

"Not yet written" is ``handed_at IS NULL``: the handing mark is committed right before a message's bytes go
(``claims.mark_handed``), guarded on the same columns, so a row is either stopped here or handed there, never
both (docs/architecture.md, "Opt-outs at send time").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, update
from sqlalchemy.orm import Session

from broadcaster.db.models import Message
from broadcaster.vocabulary import MessageStatus
from consent.models import ConsentEvent
from consent.policy import REASON_TEXTS, ExclusionReason
from consent.suppression import address_key


def stop_pending(
    session: Session,
    *,
    channel: str,
    address: str,
    purposes: Iterable[str] | None,
    reason: ExclusionReason,
    now: datetime,
    campaign_id: str | None = None,
) -> int:
    """Suppress ``address``'s queued or claimed-but-unwritten messages on ``channel`` (of ``purposes``; None:
    of every purpose; of ``campaign_id`` only when given); returns how many. System and test messages (no
    purpose) are never stopped: an opt-out's own confirmation must still go."""
    return stop_pending_listed(
        session,
        channel=channel,
        listed=[address_key(channel, address)],
        purposes=purposes,
        reason=reason,
        now=now,
        campaign_id=campaign_id,
    )


def stop_pending_listed(
    session: Session,
    *,
    channel: str,
    listed: Select[Any] | Sequence[str],
    purposes: Iterable[str] | None,
    reason: ExclusionReason,
    now: datetime,
    campaign_id: str | None = None,
) -> int:
    """``stop_pending`` for every address key in ``listed``: keys, or a query that selects them (a whole register
    or exclusion list), in one statement."""
    keys = listed.scalar_subquery() if isinstance(listed, Select) else list(listed)
    statement = (
        update(Message)
        .where(
            Message.channel == channel,
            Message.address_key.in_(keys),
            Message.status.in_((MessageStatus.QUEUED, MessageStatus.SENDING)),
            Message.handed_at.is_(None),
            Message.purpose.is_not(None),
        )
        .values(status=MessageStatus.SUPPRESSED, reason=REASON_TEXTS[reason], final_at=now)
        .execution_options(synchronize_session=False)
    )
    if purposes is not None:
        statement = statement.where(Message.purpose.in_(list(purposes)))
    if campaign_id is not None:
        statement = statement.where(Message.campaign_id == campaign_id)
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def stop_withdrawn(session: Session, event: ConsentEvent) -> int:
    """Stop what a withdrawal covers: the address's unwritten messages of the event's channel and purpose.
    Every path that records a withdrawal calls this in the same transaction (docs/architecture.md,
    "Opt-outs at send time")."""
    return stop_pending(
        session,
        channel=event.channel,
        address=event.address,
        purposes=[event.purpose],
        reason=ExclusionReason.WITHDRAWN,
        now=event.recorded_at,
    )
