"""Fixtures of the delivery tests: a working directory pointed at this test's own sandbox SMTP and SMSC, with
its in-process driver (``pipeline.Pipeline``), and the processes and embedded engines a test starts.

The driver plans a run with a ``RecordingEnqueuer``, then runs ``Dispatcher.run_chunk`` for every chunk the
planner or the tick recorded, and moves a ``FrozenClock`` for back-offs and schedules. Receipts come in on the
SMPP adapter's hand-over thread through the real ``inbound_batch_handler``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.migrate import upgrade
from broadcaster.settings import load_settings
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from channels.sandbox.smsc import SandboxSmsc, SmscBehaviour
from channels.sandbox.smtp import SandboxSmtpServer, SmtpBehaviour
from tests.broadcaster.conftest import ADMIN_LOGIN, START
from tests.broadcaster.delivery.kill9_campaign import Peers
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Engine, Started, descendants, process_alive
from tests.broadcaster.delivery.workdir_files import (
    APPROVER,
    DELIVERY,
    EDITOR,
    UNSUBSCRIBE_SECRET,
    provider_sections,
    render_config,
)
from tests.broadcaster.workdir_templates import WorkdirTemplates


@pytest.fixture
def make_pipeline(
    tmp_path: Path, isolated_env: None, workdir_templates: WorkdirTemplates
) -> Iterator[PipelineFactory]:
    """``make_pipeline(smtp=SmtpBehaviour(...), smsc=SmscBehaviour(...), delivery={...}, sms={...})``;
    ``providers={name: section}`` adds provider sections, ``settings_sections={"a.b": {...}}`` any other.

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
        settings_sections: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Pipeline:
        clock = FrozenClock(START)
        directory = tmp_path / name
        workdir_templates.make(directory, admin_login=ADMIN_LOGIN, clock=clock)
        # Both servers first, on ports the kernel chooses: the configuration names those ports.
        smtp_server = SandboxSmtpServer(None, "127.0.0.1", 0, smtp).start()
        servers.append(smtp_server)
        smsc_server = SandboxSmsc(host="127.0.0.1", behaviour=smsc)
        smsc_server.start()
        servers.append(smsc_server)
        sections: dict[str, Mapping[str, Any]] = {
            "database": {"url": database_url or "sqlite:///broadcaster.sqlite3"},
            "broker": {"url": broker_url or "sqla+sqlite:///broker.sqlite3"},
            "delivery": {**DELIVERY, **(delivery or {})},
            "security": {"unsubscribe_secret": UNSUBSCRIBE_SECRET},
            **provider_sections(smtp_port=smtp_server.port, smpp_port=smsc_server.port, sms=sms, mail=mail),
            **{f"providers.{name}": section for name, section in (providers or {}).items()},
            **(settings_sections or {}),
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
def peers(tmp_path: Path) -> Iterator[Peers]:
    """The sandbox SMTP server and SMSC each in a process of its own (the kill -9 tests' peers)."""
    folder = tmp_path / "sandbox"
    folder.mkdir()
    started = Peers(folder)
    yield started
    started.stop()


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
