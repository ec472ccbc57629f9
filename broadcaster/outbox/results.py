"""Apply one window's ``SendResult``s to the outbox: adapters classify, this module decides (docs/architecture.md §4).

Every change is a guarded ``UPDATE … WHERE status = 'sending'`` so that a redelivered task or a sweeper
never overwrites a newer state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, update
from sqlalchemy.orm import Session

from broadcaster.campaigns.schema import OnUncertain
from broadcaster.db.bulk import insert_ignoring_conflicts, update_by_id
from broadcaster.db.models import DeliveryEventRow, Message, MessagePart
from broadcaster.devices import forget_token
from broadcaster.outbox.fallbacks import release_fallbacks_of
from broadcaster.settings_sections import DeliverySettings
from broadcaster.suppressing import suppress_address
from broadcaster.vocabulary import ATTEMPT_FAILED, MessageStatus
from channels.base import Channel, SendOutcome, SendResult
from channels.errors import (
    ChannelError,
    ConfigurationError,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)
from channels.masking import mask_text


@dataclass(frozen=True)
class Claimed:
    """What the dispatcher knows about a claimed message when its result comes back."""

    id: int
    address: str
    channel: str
    provider: str
    attempts: int  # including this one
    campaign_id: str | None
    on_uncertain: OnUncertain
    # For the window's audit entry, hashed as the window is composed (None when deliveries are not audited
    # or, for the address, when no key is configured).
    address_hash: str | None = None
    content_hash: str | None = None


@dataclass
class WindowOutcome:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    configuration_error: ChannelError | None = None
    throttled_for: float = 0.0  # the longest wait a provider asked for
    auto_paused: str | None = None  # the reason, when the window tripped the failure threshold
    permanent: list[tuple[Claimed, ChannelError]] = field(default_factory=list)
    # The status each recorded message was moved to (its guarded UPDATE's target), for the audit entry.
    statuses: dict[int, MessageStatus] = field(default_factory=dict)

    def add(self, other: WindowOutcome) -> None:
        """Fold in the outcome of results recorded earlier from the same window."""
        self.sent += other.sent
        self.deferred += other.deferred
        self.failed += other.failed
        self.unknown += other.unknown
        self.configuration_error = self.configuration_error or other.configuration_error
        self.throttled_for = max(self.throttled_for, other.throttled_for)
        self.auto_paused = self.auto_paused or other.auto_paused


def _guarded(session: Session, message_id: int, **values: object) -> bool:
    result = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == MessageStatus.SENDING)
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


def _move(session: Session, outcome: WindowOutcome, message_id: int, **values: object) -> None:
    """A guarded status change, noted in the outcome when it applied (the window's audit entry lists it)."""
    if _guarded(session, message_id, **values):
        outcome.statuses[message_id] = MessageStatus(str(values["status"]))


def _untouched(session: Session, outcome: WindowOutcome, message: Claimed) -> None:
    """Back to the queue as before the claim (the attempt is not counted): not the message's fault."""
    _move(
        session,
        outcome,
        message.id,
        status=MessageStatus.QUEUED,
        chunk_id=None,
        attempts=message.attempts - 1,
    )


def _retry_delay(settings: DeliverySettings, attempts: int, error: TransientError) -> float | None:
    """Seconds before the next attempt, or None when the attempts are used up."""
    if attempts > len(settings.retry_backoff):
        return None
    delay = settings.retry_backoff[attempts - 1]
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay


def apply_results(
    session: Session,
    *,
    claimed: Mapping[int, Claimed],
    results: Sequence[SendResult],
    settings: DeliverySettings,
    now: datetime,
    window_size: int | None = None,
) -> WindowOutcome:
    """Record a window's results (or part of them: ``window_size`` is the whole window's, for the share of
    permanent failures that pauses a campaign instead of suppressing)."""
    outcome = WindowOutcome()
    sent = [r for r in results if r.outcome == SendOutcome.SENT]
    _mark_sent(session, [(claimed[r.message_id], r) for r in sent], now)
    outcome.sent = len(sent)
    outcome.statuses.update((r.message_id, MessageStatus.SENT) for r in sent)
    answers: list[dict[str, object]] = []
    for result in results:
        message = claimed[result.message_id]
        if result.outcome == SendOutcome.SENT:
            continue
        error = result.error
        assert error is not None, "a failed SendResult carries its error"
        answers.append(_attempt_event(message, error, now))
        if result.accepted_parts:
            _keep_accepted_parts(session, message, result, now)
        code = error.code
        if isinstance(error, ConfigurationError):
            # Not this message's fault: hand it back untouched; the provider's campaigns pause.
            _untouched(session, outcome, message)
            outcome.configuration_error = outcome.configuration_error or error
        elif isinstance(error, PermanentError):
            outcome.permanent.append((message, error))
        elif isinstance(error, OutcomeUnknown):
            if message.on_uncertain == OnUncertain.RESEND and message.attempts <= len(settings.retry_backoff):
                _defer(
                    session,
                    outcome,
                    message,
                    now + timedelta(seconds=settings.retry_backoff[message.attempts - 1]),
                    error,
                )
                outcome.deferred += 1
            else:
                _move(
                    session,
                    outcome,
                    message.id,
                    status=MessageStatus.UNKNOWN,
                    hold=True,
                    reason=str(error),
                    error_code=code,
                )
                outcome.unknown += 1
        elif isinstance(error, TransientError):
            if isinstance(error, Throttled):
                outcome.throttled_for = max(outcome.throttled_for, error.retry_after or 1.0)
            delay = _retry_delay(settings, message.attempts, error)
            if delay is None:
                _move(
                    session,
                    outcome,
                    message.id,
                    status=MessageStatus.TECHNICAL_FAILURE,
                    reason=f"gave up after {message.attempts} attempts: {error}",
                    error_code=code,
                    final_at=now,
                )
                outcome.failed += 1
            else:
                _defer(session, outcome, message, now + timedelta(seconds=delay), error)
                outcome.deferred += 1
        else:  # an error class outside the tree is a bug in an adapter: keep the message, stop guessing
            _move(
                session,
                outcome,
                message.id,
                status=MessageStatus.UNKNOWN,
                hold=True,
                reason=f"unclassified: {error!r}",
            )
            outcome.unknown += 1

    # Only the answers that were not an acceptance get a row: the happy path stays one UPDATE per window.
    insert_ignoring_conflicts(session, DeliveryEventRow.__table__, answers, conflict=["dedupe_key"])  # type: ignore[arg-type]
    _settle_permanent(session, outcome, window=window_size or len(results), settings=settings, now=now)
    return outcome


STATUS_TEXT_MAX = 50  # delivery_events.status_text


def _attempt_event(message: Claimed, error: ChannelError, now: datetime) -> dict[str, object]:
    """The provider's answer to one attempt, for the history. Keyed by message, attempt and error class, so a
    window recorded twice (a redelivered task) stores it once. The text is masked: the message row holds the
    address, the event need not (and an erased address must not survive in it)."""
    # The provider's own words when it gave any (the code is kept beside them), else what the adapter saw.
    text = mask_text(error.detail or (str(error.args[0]) if error.args else type(error).__name__)) or ""
    if len(text) > STATUS_TEXT_MAX:
        text = text[: STATUS_TEXT_MAX - 1] + "…"
    return {
        "dedupe_key": f"attempt:{message.id}:{message.attempts}:{type(error).__name__}",
        "message_id": message.id,
        "inbound_id": None,
        "provider": message.provider,
        "provider_id": None,
        "type": ATTEMPT_FAILED,
        "status_text": text,
        "error_code": error.code[:50] if error.code else None,
        "occurred_at": now,
        "recorded_at": now,
    }


def _settle_permanent(
    session: Session, outcome: WindowOutcome, *, window: int, settings: DeliverySettings, now: datetime
) -> None:
    """Fail and suppress, unless so much of the window failed that a misconfiguration is likelier."""
    if not outcome.permanent:
        return
    share = len(outcome.permanent) / window
    if window >= settings.auto_pause_min_window and share > settings.auto_pause_failure_share:
        first = outcome.permanent[0][1]
        outcome.auto_paused = (
            f"{len(outcome.permanent)} of {window} messages in one window failed permanently "
            f"(first: {first}); nobody was suppressed — check the provider settings, then resume"
        )
        for message, _error in outcome.permanent:
            _untouched(session, outcome, message)
        outcome.permanent.clear()
        return
    for message, error in outcome.permanent:
        _move(
            session,
            outcome,
            message.id,
            status=MessageStatus.PERMANENT_FAILURE,
            reason=str(error),
            error_code=error.code,
            final_at=now,
        )
        outcome.failed += 1
        if isinstance(error, RecipientRejected):
            if message.channel == Channel.PUSH:
                # An unregistered or bad token (docs/push.md): no later campaign may target it.
                forget_token(session, token=message.address)
            suppress_address(
                session,
                channel=message.channel,
                address=message.address,
                reason=str(error),
                source=f"{message.provider}:{error.code or 'rejected'}",
                now=now,
            )
    # A person's fallback (outbox/fallbacks.py) need not wait for a primary that failed for good.
    release_fallbacks_of(session, [message.id for message, _error in outcome.permanent], now=now)


def _defer(
    session: Session, outcome: WindowOutcome, message: Claimed, when: datetime, error: ChannelError
) -> None:
    _move(
        session,
        outcome,
        message.id,
        status=MessageStatus.QUEUED,
        chunk_id=None,
        not_before=when,
        reason=f"retry {message.attempts}: {error}",
        error_code=error.code,
    )


def _mark_sent(session: Session, sent: Sequence[tuple[Claimed, SendResult]], now: datetime) -> None:
    """The common case, batched: one bulk UPDATE and one bulk INSERT of SMS parts per window."""
    if not sent:
        return
    params = []
    parts: list[dict[str, object]] = []
    for message, result in sent:
        is_sms = message.channel == Channel.SMS
        # Social deliveries come back by provider id (a ZNS msg_id in a webhook event): its one part is what
        # a receipt is matched to, as an SMS part is.
        with_parts = is_sms or message.channel == Channel.SOCIAL
        params.append(
            {
                "b_id": message.id,
                "b_ref": None if is_sms else (result.provider_ids[0] if result.provider_ids else None),
                "b_parts": len(result.provider_ids) if with_parts else 0,
            }
        )
        if with_parts:
            parts.extend(
                {
                    "message_id": message.id,
                    "number": number,
                    "provider": message.provider,
                    "provider_id": pid,  # normalised by the adapter
                    "state": "sent",
                    "updated_at": now,
                }
                for number, pid in enumerate(result.provider_ids, start=1)
            )
    update_by_id(
        session,
        cast(Table, Message.__table__),
        params,
        from_row={"provider_ref": "b_ref", "parts_total": "b_parts"},
        constants={
            "status": MessageStatus.SENT.value,
            "sent_at": now,
            "reason": None,
            "error_code": None,
        },
        where=[Message.status == MessageStatus.SENDING.value],
    )
    insert_ignoring_conflicts(session, MessagePart.__table__, parts, conflict=["message_id", "number"])  # type: ignore[arg-type]


SMS_REFERENCE_PREFIX = "concat-ref:"


def sms_reference_ref(reference: int) -> str:
    """How a long SMS's concatenation reference is kept in ``messages.provider_ref`` between attempts."""
    return f"{SMS_REFERENCE_PREFIX}{reference}"


def parse_sms_reference(provider_ref: str | None) -> int | None:
    if provider_ref is None or not provider_ref.startswith(SMS_REFERENCE_PREFIX):
        return None
    value = provider_ref[len(SMS_REFERENCE_PREFIX) :]
    return int(value) if value.isascii() and value.isdigit() else None


def _keep_accepted_parts(session: Session, message: Claimed, result: SendResult, now: datetime) -> None:
    """The SMSC accepted some parts of a message that failed: store them (receipts match them, and the next
    attempt sends only the others) and the concatenation reference they carry (the others must carry it too,
    or the handset shows an orphan part and a second message)."""
    if result.sms_reference is not None:
        _guarded(session, message.id, provider_ref=sms_reference_ref(result.sms_reference))
    parts = [
        {
            "message_id": message.id,
            "number": number,
            "provider": message.provider,
            "provider_id": pid,  # normalised by the adapter
            "state": "sent",
            "updated_at": now,
        }
        for number, pid in sorted(result.accepted_parts.items())
    ]
    insert_ignoring_conflicts(session, MessagePart.__table__, parts, conflict=["message_id", "number"])  # type: ignore[arg-type]
