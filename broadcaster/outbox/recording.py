"""Recording a window's results (committed after the send, never across it): statuses, parts and
provider ids through ``apply_results``, the receipts that beat the commit, and the pauses a window's
outcome calls for. Results an adapter settles before its ``send()`` returns are recorded early."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from broadcaster.audit.deliveries import record_window
from broadcaster.clock import Clock
from broadcaster.db.engine import commit_unflushed
from broadcaster.outbox.handback import worker_id
from broadcaster.outbox.inbound import process_pending
from broadcaster.outbox.pauses import pause_campaigns, pause_provider
from broadcaster.outbox.replies import ReplyRules
from broadcaster.outbox.results import WindowOutcome, apply_results
from broadcaster.outbox.windows import Window
from broadcaster.settings import Settings
from channels.base import SendResult
from channels.errors import PermanentError, Withheld


@dataclass(frozen=True)
class ChunkFacts:
    """The chunk a window belongs to, as its audit entry names it."""

    chunk_id: int
    provider: str
    channel: str
    run_id: int | None  # None for a test send or a system message
    campaign_id: str | None


class Recorder:
    """Records windows for one dispatcher.

    ``match_receipts``: after each window, apply the receipts that beat its commit. Off when another
    process applies inbound records (the gateway then spends its CPU on the wire)."""

    def __init__(
        self, *, sessions: sessionmaker[Session], settings: Settings, clock: Clock, match_receipts: bool
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.match_receipts = match_receipts

    def early(self, chunk: ChunkFacts, receipts: bool, window: Window, results: Sequence[SendResult]) -> None:
        """Record results the adapter reports before its send() returns (on a sender thread), so a crash
        holds only the messages really in flight. Permanent failures wait for the whole window: whether
        they suppress anyone depends on how much of the window failed."""
        now = self.clock.now()
        results = [r for r in _to_record(results) if not isinstance(r.error, PermanentError)]
        if not results:
            return
        with self.sessions.begin() as session:
            commit_unflushed(session)  # as the window's record, without any pause (below)
            outcome = apply_results(
                session, claimed=window.claimed, results=results, settings=self.settings.delivery, now=now
            )
            self._audit(session, chunk, window, outcome, now)
            if self.match_receipts and receipts and outcome.sent:
                process_pending(
                    session,
                    now=now,
                    provider=chunk.provider,
                    limit=500,
                    received_after=window.started_at,
                    replies=ReplyRules.from_settings(self.settings),
                )
        window.recorded.update(r.message_id for r in results)
        window.early.add(outcome)

    def window(
        self, chunk: ChunkFacts, receipts: bool, window: Window, results: list[SendResult]
    ) -> WindowOutcome:
        """Apply one window's results (those not recorded early), and pause what its outcome calls for: the
        provider's campaigns on a configuration error, the window's campaigns over the failure threshold."""
        now = self.clock.now()
        late = [r for r in _to_record(results) if r.message_id not in window.recorded]
        with self.sessions.begin() as session:
            outcome = apply_results(
                session,
                claimed=window.claimed,
                results=late,
                settings=self.settings.delivery,
                now=now,
                window_size=len(results),
            )
            self._audit(session, chunk, window, outcome, now)
            outcome.add(window.early)
            if self.match_receipts and receipts and outcome.sent:
                # Receipts that beat this commit (the SMSC answered before we stored the part) match now.
                process_pending(
                    session,
                    now=now,
                    provider=chunk.provider,
                    limit=500,
                    received_after=window.started_at,
                    replies=ReplyRules.from_settings(self.settings),
                )
            if outcome.configuration_error is not None:
                reason = f"provider {chunk.provider}: configuration error: {outcome.configuration_error}"
                pause_provider(session, chunk.provider, reason, clock=self.clock)
            if outcome.auto_paused is not None:
                campaigns = {c.campaign_id for c in window.claimed.values()}
                pause_campaigns(session, campaigns, outcome.auto_paused, clock=self.clock)
            if outcome.configuration_error is None and outcome.auto_paused is None:
                # Lost in a crash of the database server, the handed-over rows stay in sending and are held
                # as unknown, never sent twice; receipts matched here are matched again. A pause must last.
                commit_unflushed(session)
        return outcome

    def _audit(
        self, session: Session, chunk: ChunkFacts, window: Window, outcome: WindowOutcome, now: datetime
    ) -> None:
        """The window's entry, in the transaction that moves its messages: each one's new status and the
        hashes composed with it."""
        if not self.settings.audit.deliveries:
            return
        messages = [
            [mid, status.value, window.claimed[mid].address_hash, window.claimed[mid].content_hash]
            for mid, status in sorted(outcome.statuses.items())
        ]
        record_window(
            session,
            actor=f"outbox@{worker_id()}",
            chunk_id=chunk.chunk_id,
            provider=chunk.provider,
            channel=chunk.channel,
            run_id=chunk.run_id,
            campaign_id=chunk.campaign_id,
            messages=messages,
            at=now,
        )


def _to_record(results: Sequence[SendResult]) -> list[SendResult]:
    """The results that say something: a message the handing guard withheld was stopped since its claim, and
    its row already says why (suppressed by an opt-out), so nothing is recorded for it."""
    return [r for r in results if not isinstance(r.error, Withheld)]
