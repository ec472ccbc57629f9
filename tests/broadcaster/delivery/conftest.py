"""Factories for the delivery tests: a working directory pointed at this test's own sandbox SMTP and SMSC,
contacts, approved campaigns, and an in-process driver that runs the real pipeline functions without Celery.

The driver plans a run with a ``RecordingEnqueuer``, then runs ``Dispatcher.run_chunk`` for every chunk the
planner or the tick recorded, and moves a ``FrozenClock`` for back-offs and schedules. Receipts come in on the
SMPP adapter's hand-over thread through the real ``inbound_batch_handler``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, load_campaign_file
from broadcaster.campaigns.store import load_bundle
from broadcaster.clock import FrozenClock
from broadcaster.contacts.importer import ImportReport, import_contacts
from broadcaster.contacts.reader import FIELDS
from broadcaster.context import AppContext
from broadcaster.db.migrate import upgrade
from broadcaster.db.models import DeliveryEventRow, Message, User
from broadcaster.outbox.adapters import AdapterPool
from broadcaster.outbox.dispatch import Dispatcher, DispatchSummary, dispatcher_for
from broadcaster.outbox.planner import plan_run
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.outbox.scheduler import TickReport, tick
from broadcaster.outbox.sending import start_manual_run
from broadcaster.settings import load_settings
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from broadcaster.workdir import init_workdir
from channels.sandbox.smsc import SandboxSmsc, SmscBehaviour
from channels.sandbox.smtp import SandboxSmtpServer, SmtpBehaviour
from tests.broadcaster.conftest import ADMIN_LOGIN, START, write_campaign
from tests.broadcaster.delivery.processes import Engine, Started, descendants, process_alive
from tests.conftest import free_port
from tests.peers.polling import wait_until

EDITOR = "bien_tap"
APPROVER = "phe_duyet"
CONTACT_COLUMNS = FIELDS
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi")
GIVEN = ("Văn An", "Thị Bích", "Minh Hoàng", "Thu Hà", "Quốc Bảo", "Ngọc Ánh", "Đức Thắng", "Thị Hương")

# Test-friendly engine settings: real protocols, short waits. Back-offs are measured on the frozen clock.
DELIVERY = {
    "chunk_size": 200,
    "retry_backoff": [30.0, 120.0],
    "stuck_after_seconds": 600.0,
    "auto_pause_failure_share": 0.5,
    "auto_pause_min_window": 10,
    "missed_occurrence_grace_seconds": 6 * 3600.0,
}


UNSUBSCRIBE_SECRET = "test-unsubscribe-secret"


def citizen(number: int, **overrides: str) -> dict[str, str]:
    """One contacts-file row with a unique Vinaphone number, e-mail and a Vietnamese name."""
    row = {
        "external_id": f"DN-{number:06d}",
        "full_name": f"{FAMILY[number % len(FAMILY)]} {GIVEN[number % len(GIVEN)]} {number}",
        "phone": f"0912{number:06d}",
        "email": f"cong.dan{number}@example.vn",
        "segment": "citizen",
        "agency": "",
        "district": "Hải Châu",
        "ward": "Thạch Thang",
        "language": "vi",
        "tags": "",
    }
    row.update(overrides)
    return row


def citizens(count: int, *, first: int = 1) -> list[dict[str, str]]:
    return [citizen(n) for n in range(first, first + count)]


def write_contacts_csv(path: Path, rows: Iterable[Mapping[str, str]]) -> Path:
    """A contacts file as an officer exports it from Excel: UTF-8 with BOM, the docs/architecture.md §5 columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CONTACT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in CONTACT_COLUMNS})
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def render_config(sections: Mapping[str, Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def provider_sections(
    *,
    smtp_port: int,
    smpp_port: int,
    sms: Mapping[str, Any] | None = None,
    mail: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    sms_main: dict[str, Any] = {
        "channel": "sms",
        "type": "smpp",
        "host": "127.0.0.1",
        "port": smpp_port,
        "system_id": "skhcn",
        "password": "sandbox",
        "source_addr": "SKHCN",
        "binds": 1,
        "window": 64,
        "pdu_timeout": 5.0,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
        "connect_timeout": 2.0,
        "throttle_backoff": 0.01,
        "throttle_backoff_max": 0.05,
    }
    sms_main.update(sms or {})
    mail_section: dict[str, Any] = {
        "channel": "email",
        "type": "smtp",
        "host": "127.0.0.1",
        "port": smtp_port,
        "from_address": "thongbao@skhcn.danang.gov.vn",
        "from_name": "Sở Khoa học và Công nghệ thành phố Đà Nẵng",
        "bounce_domain": "skhcn.danang.gov.vn",
        "unsubscribe_base_url": "https://skhcn.danang.gov.vn/huy-dang-ky",
        "tls": "none",
        "connections": 4,
        "timeout": 10.0,
    }
    mail_section.update(mail or {})
    return {"providers.sms_main": sms_main, "providers.mail": mail_section}


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

    def add_contacts(self, rows: Iterable[Mapping[str, str]]) -> ImportReport:
        self._csv_counter += 1
        path = write_contacts_csv(self.directory / f"danh-ba-{self._csv_counter}.csv", rows)
        with self.context.sessions.begin() as session:
            return import_contacts(session, path=path, actor=ADMIN_LOGIN, clock=self.clock)

    def write_campaign(self, **overrides: Any) -> Path:
        return write_campaign(self.directory, **overrides)

    def load_campaign(self, path: Path) -> str:
        settings = self.context.settings
        providers = {
            name: ProviderInfo(name=name, channel=p.channel) for name, p in settings.providers.items()
        }
        bundle, problems = load_campaign_file(
            path, templates_dir=self.context.templates_dir, providers=providers
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


@pytest.fixture
def make_pipeline(tmp_path: Path, isolated_env: None) -> Iterator[PipelineFactory]:
    """``make_pipeline(smtp=SmtpBehaviour(...), smsc=SmscBehaviour(...), delivery={...}, sms={...})``;
    ``providers={name: section}`` adds provider sections.

    Starts the sandbox SMTP server and SMSC on free 127.0.0.1 ports, makes a working directory with
    ``init_workdir`` whose broadcaster.toml points the providers at them, and adds an editor and an approver.
    ``database_url`` / ``broker_url`` switch the run to PostgreSQL / RabbitMQ (the schema is migrated there).
    """
    made: list[Pipeline] = []
    servers: list[SandboxSmtpServer | SandboxSmsc] = []

    def make(
        *,
        smtp: SmtpBehaviour | None = None,
        smsc: SmscBehaviour | None = None,
        delivery: Mapping[str, Any] | None = None,
        sms: Mapping[str, Any] | None = None,
        mail: Mapping[str, Any] | None = None,
        database_url: str | None = None,
        broker_url: str | None = None,
        name: str = "wd",
        providers: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Pipeline:
        clock = FrozenClock(START)
        directory = tmp_path / name
        init_workdir(directory, admin_login=ADMIN_LOGIN, clock=clock).close()
        smtp_server = SandboxSmtpServer(None, "127.0.0.1", free_port(), smtp)
        smsc_server = SandboxSmsc(host="127.0.0.1", port=free_port(), behaviour=smsc)
        sections: dict[str, Mapping[str, Any]] = {
            "database": {"url": database_url or "sqlite:///broadcaster.sqlite3"},
            "broker": {"url": broker_url or "sqla+sqlite:///broker.sqlite3"},
            "delivery": {**DELIVERY, **(delivery or {})},
            "security": {"unsubscribe_secret": UNSUBSCRIBE_SECRET},
            **provider_sections(smtp_port=smtp_server.port, smpp_port=smsc_server.port, sms=sms, mail=mail),
            **{f"providers.{name}": section for name, section in (providers or {}).items()},
        }
        config = directory / "broadcaster.toml"
        config.write_text(render_config(sections), encoding="utf-8")
        settings = load_settings(config)
        context = AppContext.from_settings(settings, clock=clock)
        if database_url is not None:
            upgrade(settings.database_url)
            with context.sessions.begin() as session:
                add_user(session, actor=ADMIN_LOGIN, login=ADMIN_LOGIN, role=Role.ADMIN, clock=clock)
        with context.sessions.begin() as session:
            editor = add_user(session, actor=ADMIN_LOGIN, login=EDITOR, role=Role.EDITOR, clock=clock)
            approver = add_user(session, actor=ADMIN_LOGIN, login=APPROVER, role=Role.APPROVER, clock=clock)
        smtp_server.start()
        servers.append(smtp_server)
        smsc_server.start()
        servers.append(smsc_server)
        pipeline = Pipeline(
            directory=directory,
            config=config,
            context=context,
            clock=clock,
            smtp=smtp_server,
            smsc=smsc_server,
            editor=editor,
            approver=approver,
        )
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()
    for server in servers:
        server.stop()


@pytest.fixture
def pipeline(make_pipeline: PipelineFactory) -> Pipeline:
    """A pipeline with well-behaved peers."""
    return make_pipeline()


@pytest.fixture
def processes() -> Iterator[Started]:
    """Whatever the test started (and anything under it) that is still alive afterwards is killed."""
    started = Started()
    started.strays = set()
    yield started
    for process in started:
        started.strays |= descendants(process.pid)
        if process.poll() is None:
            process.kill()
        process.wait()
    for pid in started.strays:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def engine_for() -> Iterator[Callable[[Pipeline], Engine]]:
    engines: list[Engine] = []

    def make(pipeline: Pipeline) -> Engine:
        engine = Engine(pipeline)
        engines.append(engine)
        engine.engine.start()
        return engine

    yield make
    for engine in engines:
        engine.engine.stop()
        engine.context.close()
