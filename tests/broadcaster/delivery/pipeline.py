"""The in-process driver of the delivery tests: one working directory, its sandbox SMTP server and SMSC, and
the real pipeline functions (planner, dispatcher, tick) run without Celery on a ``FrozenClock``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, SendRules, load_campaign_file
from broadcaster.campaigns.store import load_bundle
from broadcaster.clock import FrozenClock
from broadcaster.contacts.importer import ImportReport, import_contacts
from broadcaster.context import AppContext
from broadcaster.db.models import DeliveryEventRow, Message, User
from broadcaster.outbox.adapters import AdapterPool
from broadcaster.outbox.dispatch import Dispatcher, DispatchSummary, dispatcher_for
from broadcaster.outbox.planner import plan_run
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.outbox.scheduler import TickReport, tick
from broadcaster.outbox.sending import start_manual_run
from channels.sandbox.smsc import SandboxSmsc
from channels.sandbox.smtp import SandboxSmtpServer
from tests.broadcaster.conftest import ADMIN_LOGIN, write_campaign
from tests.broadcaster.delivery.workdir_files import (
    EDITOR,
    write_contacts_csv,
)
from tests.peers.polling import wait_until


@dataclass
class Pipeline:
    """One working directory, its peers and the in-process engine (planner, dispatcher, tick)."""

    directory: Path
    config: Path
    context: AppContext
    clock: FrozenClock
    smtp: SandboxSmtpServer
    smsc: SandboxSmsc
    editor: User
    approver: User
    enqueuer: RecordingEnqueuer = field(default_factory=RecordingEnqueuer)
    adapters: AdapterPool | None = None
    dispatcher: Dispatcher | None = None
    _csv_counter: int = 0

    # -- setup ---------------------------------------------------------------------------------------------

    def start_engine(self) -> None:
        self.dispatcher = dispatcher_for(self.context)
        self.adapters = self.dispatcher.adapters

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.close()
        self.context.close()

    def quiesce(self) -> None:
        """Nothing arrives from outside any more: the SMSC stops (a late redelivered receipt included) and the
        engine's receivers finish what they took in. For tests that compare database dumps."""
        self.smsc.stop()
        if self.dispatcher is not None:
            self.dispatcher.close()
            self.dispatcher = None

    def add_contacts(self, rows: Iterable[Mapping[str, str]]) -> ImportReport:
        self._csv_counter += 1
        path = write_contacts_csv(self.directory / f"danh-ba-{self._csv_counter}.csv", rows)
        with self.context.sessions.begin() as session:
            return import_contacts(session, path=path, actor=ADMIN_LOGIN, clock=self.clock)

    def write_campaign(self, **overrides: Any) -> Path:
        return write_campaign(self.directory, **overrides)

    def load_campaign(self, path: Path) -> str:
        settings = self.context.settings
        bundle, problems = load_campaign_file(
            path,
            templates_dir=self.context.templates_dir,
            providers=ProviderInfo.all_from(settings),
            rules=SendRules.from_settings(settings),
        )
        assert problems == [], problems
        assert bundle is not None
        with self.context.sessions.begin() as session:
            return load_bundle(session, bundle, actor=EDITOR, clock=self.clock).campaign_id

    def approve(self, campaign_id: str) -> None:
        with self.context.sessions.begin() as session:
            version = workflow.submit(
                session,
                campaign_id=campaign_id,
                actor=self.editor,
                settings=self.context.settings,
                clock=self.clock,
            )
            content_hash = version.content_hash
        with self.context.sessions.begin() as session:
            workflow.approve(
                session,
                campaign_id=campaign_id,
                actor=self.approver,
                clock=self.clock,
                content_hash=content_hash,
            )

    def approved_campaign(self, **overrides: Any) -> str:
        """Write (``write_campaign`` overrides), load, submit and approve a campaign; returns its id."""
        campaign_id = self.load_campaign(self.write_campaign(**overrides))
        self.approve(campaign_id)
        return campaign_id

    def schedule(self, campaign_id: str) -> None:
        with self.context.sessions.begin() as session:
            workflow.schedule(session, campaign_id=campaign_id, actor=self.editor, clock=self.clock)

    def pause(self, campaign_id: str) -> None:
        with self.context.sessions.begin() as session:
            workflow.pause(
                session, campaign_id=campaign_id, actor=self.editor, clock=self.clock, reason="kiểm tra"
            )

    def resume(self, campaign_id: str) -> None:
        with self.context.sessions.begin() as session:
            workflow.resume(session, campaign_id=campaign_id, actor=self.editor, clock=self.clock)

    def cancel(self, campaign_id: str) -> None:
        with self.context.sessions.begin() as session:
            workflow.cancel(
                session, campaign_id=campaign_id, actor=self.editor, clock=self.clock, reason="huỷ"
            )

    # -- driving the engine --------------------------------------------------------------------------------

    def start_run(self, campaign_id: str, *, again: bool = False) -> int:
        with self.context.sessions.begin() as session:
            return start_manual_run(
                session, campaign_id=campaign_id, actor=self.editor, clock=self.clock, again=again
            )

    def plan(self, run_id: int) -> int:
        return plan_run(
            self.context.sessions,
            run_id=run_id,
            settings=self.context.settings,
            clock=self.clock,
            enqueuer=self.enqueuer,
        )

    def run_chunk(self, chunk_id: int) -> DispatchSummary:
        if self.dispatcher is None:
            self.start_engine()
        assert self.dispatcher is not None
        return self.dispatcher.run_chunk(chunk_id)

    def drain(self, *, limit: int = 200) -> list[DispatchSummary]:
        """Run what was enqueued (plan tasks first, then chunks in order) until nothing is left."""
        summaries: list[DispatchSummary] = []
        for _ in range(limit):
            if self.enqueuer.runs:
                self.plan(self.enqueuer.runs.pop(0))
            elif self.enqueuer.chunks:
                chunk_id, _queue = self.enqueuer.chunks.pop(0)
                summaries.append(self.run_chunk(chunk_id))
            else:
                return summaries
        raise AssertionError(f"the queue did not drain after {limit} tasks")

    def tick(self) -> TickReport:
        return tick(
            self.context.sessions, settings=self.context.settings, clock=self.clock, enqueuer=self.enqueuer
        )

    def send(self, campaign_id: str, *, again: bool = False) -> int:
        """A manual run, planned and dispatched to the end; returns the run id (``again``: a one-off
        campaign that already went out)."""
        run_id = self.start_run(campaign_id, again=again)
        self.plan(run_id)
        self.drain()
        return run_id

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))

    # -- looking ---------------------------------------------------------------------------------------------

    def messages(self, run_id: int | None = None, *, channel: str | None = None) -> list[Message]:
        query = select(Message).order_by(Message.id)
        if run_id is not None:
            query = query.where(Message.run_id == run_id)
        if channel is not None:
            query = query.where(Message.channel == channel)
        with self.context.readers() as session:
            return list(session.scalars(query))

    def counts(self, run_id: int | None = None) -> Counter[tuple[str, str]]:
        """(channel, status) -> number of messages."""
        return Counter((m.channel, m.status.value) for m in self.messages(run_id))

    def event_count(self, **where: Any) -> int:
        query = select(func.count()).select_from(DeliveryEventRow)
        for key, value in where.items():
            query = query.where(getattr(DeliveryEventRow, key) == value)
        with self.context.readers() as session:
            return int(session.scalar(query) or 0)

    def wait_for_statuses(
        self,
        run_id: int,
        expected: Mapping[tuple[str, str], int],
        *,
        timeout: float = 20.0,
        retry: bool = True,
    ) -> Counter[tuple[str, str]]:
        """Wait until the run's counts include ``expected``; ticks in between so unmatched receipts retry."""

        def reached() -> Counter[tuple[str, str]] | None:
            if retry:
                # The tick leaves inbound records of the last seconds to the sender that matches them after
                # its window; move the frozen clock past that so it retries the rest.
                self.advance(seconds=5)
                self.tick()
            counts = self.counts(run_id)
            return counts if all(counts[key] >= n for key, n in expected.items()) else None

        result: Counter[tuple[str, str]] = wait_until(
            reached, timeout=timeout, interval=0.05, what=f"statuses {dict(expected)} of run {run_id}"
        )
        return result


PipelineFactory = Callable[..., Pipeline]
