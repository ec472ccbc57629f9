"""The Celery application and its three tasks: plan a run, dispatch a chunk, tick.

The engine always runs its work as these tasks; embedded and distributed deployments differ only in URLs
(docs/architecture.md §3). Workers build their database engine, adapters and event loops lazily in the process that
uses them, never before fork. Settings come from ``BROADCASTER_CONFIG`` (set by the CLI for its workers).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import Celery, bootsteps
from celery.exceptions import Reject
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)
from celery.worker import state as worker_state
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.context import AppContext
from broadcaster.db.engine import readers_of
from broadcaster.lease import HeldLease
from broadcaster.lifeline import expected_parent, follow_parent
from broadcaster.logs import log_fields, write_json
from broadcaster.observe.alerts import evaluate_alerts
from broadcaster.observe.heartbeat import record_beat
from broadcaster.outbox.dispatch import dispatcher_for
from broadcaster.outbox.inbound import apply_pending_exclusively
from broadcaster.outbox.planner import plan_run
from broadcaster.outbox.queues import PLAN_QUEUE, Enqueuer, inbound_queue
from broadcaster.outbox.replies import ReplyRules
from broadcaster.outbox.scheduler import TickReport, tick
from broadcaster.retention import run_daily
from broadcaster.settings import Settings, configured_log_format, load_settings

log = logging.getLogger(__name__)

app = Celery("broadcaster", set_as_current=False)

# A receipt often arrives before the gateway has recorded its window's answers; its record is tried again a
# moment later, a few times, before it is left to the tick (a short countdown, not a long Celery wait).
INBOUND_RETRY_SECONDS = 1.0
INBOUND_RETRIES = 3
# How long an idle worker waits between two looks at an SQL broker's queues (kombu's default is 1 s).
SQL_BROKER_POLL_SECONDS = 0.1
# A second gateway of one SMPP account looks for the lease this often, and says it waits this often.
GATEWAY_POLL_SECONDS = 0.5
GATEWAY_WAIT_NOTICE_SECONDS = 60.0
# Celery's event loop (RabbitMQ, Redis) looks at a warm shutdown only when its poll returns, which with
# nothing to do is its next timer, up to 10 s away: a timer this often makes SIGTERM take effect at once.
SHUTDOWN_CHECK_SECONDS = 0.5


def told_to_stop() -> bool:
    """Whether this worker process was told to stop (SIGTERM's warm shutdown, or a cold one)."""
    return worker_state.should_stop is not None or worker_state.should_terminate is not None


class ShutdownCheck(bootsteps.StartStopStep):  # type: ignore[misc]  # celery is untyped
    """Wakes the consumer's event loop every ``SHUTDOWN_CHECK_SECONDS`` so that it sees a shutdown request;
    without it a gateway worker told to stop while idle waited up to 10 s before it even began to."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.entry: Any = None

    def start(self, parent: Any) -> None:
        if parent.hub is not None:
            self.entry = parent.hub.timer.call_repeatedly(SHUTDOWN_CHECK_SECONDS, _nothing)

    def stop(self, parent: Any) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None


def _nothing() -> None:
    """A timer's work when the timer is only there to wake the loop."""


app.steps["consumer"].add(ShutdownCheck)


def celery_config(settings: Settings) -> dict[str, Any]:
    url = settings.broker_url
    config: dict[str, Any] = {
        "broker_url": url,
        "task_acks_late": True,  # a task lost with its worker is redelivered
        "task_reject_on_worker_lost": True,
        # The next task waits in the worker when one ends: kombu's SQL transport would otherwise sleep a poll
        # interval before it looked again (at its default 1 s a pair of e-mail chunks sat idle ~40 % of the
        # time; SQL_BROKER_POLL_SECONDS shortens it). A task held
        # by a worker that dies is no loss: the outbox rows, not the message, are the truth (the sweeper).
        "worker_prefetch_multiplier": 2,
        "task_ignore_result": True,  # the outbox is the result; no result backend
        "task_default_queue": PLAN_QUEUE,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # Flower's view of the workers (docs/deployment.md, "Flower"); off on the SQLite broker.
        "worker_send_task_events": settings.broker.events_on(url),
        "task_send_sent_event": settings.broker.events_on(url),
        "task_serializer": "json",
        "accept_content": ["json"],
    }
    if url.startswith("sqla+sqlite"):
        # kombu passes transport options to create_engine: wait for the file lock instead of failing.
        config["broker_transport_options"] = {"connect_args": {"timeout": 30}}
    elif url.startswith("amqp"):
        config["broker_transport_options"] = {"confirm_publish": True}
    elif url.startswith(("redis", "rediss")):
        # With late acks a killed worker's tasks come back after this, not after kombu's hour. kombu looks
        # for such tasks every 10 s and scans on one look in ten: a tenth of the timeout (at most 10 s),
        # every look, so they come back within 1.1 times the timeout, not up to 100 s after it. A scan holds
        # a lock in Redis that outlives a worker killed during it by its expiry (kombu: 5 minutes, in which
        # nobody gives anything back): it expires after one interval instead, far longer than a scan takes
        # (two scans at once would still give each task back once: kombu restores a task in a transaction).
        timeout = settings.broker.visibility_timeout
        interval = min(10.0, max(1.0, timeout / 10))
        config["broker_transport_options"] = {
            "visibility_timeout": timeout,
            "unacked_restore_interval": interval,
            "unacked_restore_throttle": 1,
            "unacked_mutex_expire": interval,
        }
    return config


def configure(settings: Settings) -> Celery:
    config = celery_config(settings)
    if config["broker_url"].startswith("sqla+"):
        _poll_sql_broker_often()
    if app.conf.broker_url != config["broker_url"]:
        # The connection and producer pools are made on first use for the broker of that moment; a process
        # that configures another broker (a second engine in one process) would keep publishing to the old one.
        app.close()
        app.amqp._producer_pool = None
    app.conf.update(config)
    return app


def _poll_sql_broker_often() -> None:
    """kombu's SQL transport sleeps ``polling_interval`` (1 s) between empty polls and takes no transport option
    for it (they all go to ``create_engine``): an idle worker would leave a handed-off MO opt-out waiting up to
    that long before it is applied (docs/architecture.md, "Opt-outs at send time")."""
    from kombu.transport import sqlalchemy as kombu_sql

    kombu_sql.Transport.polling_interval = SQL_BROKER_POLL_SECONDS


class WorkerState:
    """What one worker process owns; created on first use, after fork."""

    _lock = threading.Lock()
    _instance: WorkerState | None = None

    def __init__(self) -> None:
        self.context = AppContext.from_settings(load_settings())
        # Receipts are stored by the gateway and applied by a task in another worker process.
        self.dispatcher = dispatcher_for(
            self.context, hand_off=CeleryEnqueuer().apply_inbound, gateway=True, enqueuer=CeleryEnqueuer()
        )
        self.dispatcher.stopping = told_to_stop  # a chunk ends at its next window when the worker stops
        self.adapters = self.dispatcher.adapters
        ttl = timedelta(seconds=self.context.settings.delivery.gateway_lease_seconds)
        self.gateway_leases = {
            provider: HeldLease(
                self.context.sessions,
                f"gateway:{provider}",
                clock=self.context.clock,
                ttl=ttl,
                on_lost=functools.partial(self._lost_gateway, provider),
            )
            for provider in gateway_providers()
        }

    def hold_gateways(self) -> bool:
        """Wait until this process holds the lease of each SMPP account it is the gateway of, so that a
        second gateway of an account (an orphan of a killed ``run``, a second ``broadcaster worker``) never
        binds: it waits, saying so. False when the worker is told to stop first."""
        for provider, lease in self.gateway_leases.items():
            if lease.held:
                continue  # renewed by its own thread
            noticed = 0.0
            while (holder := lease.try_take()) is not None:
                if told_to_stop():
                    return False
                if time.monotonic() - noticed > GATEWAY_WAIT_NOTICE_SECONDS:
                    log.warning(
                        "gateway %s: another gateway of this SMPP account is running (%s); "
                        "waiting for it to stop before binding",
                        provider,
                        holder,
                    )
                    noticed = time.monotonic()
                time.sleep(GATEWAY_POLL_SECONDS)
            if noticed:
                log.warning("gateway %s: the other gateway stopped; binding now", provider)
        return True

    def _lost_gateway(self, provider: str, holder: str) -> None:
        log.error(
            "gateway %s: its lease was taken over by %s (database out of reach too long); unbinding and stopping",
            provider,
            holder,
        )
        self.adapters.discard(provider)
        os.kill(os.getpid(), signal.SIGTERM)

    @classmethod
    def get(cls) -> WorkerState:
        with cls._lock:
            if cls._instance is None:
                cls._instance = WorkerState()
            return cls._instance

    @classmethod
    def close(cls) -> None:
        with cls._lock:
            if cls._instance is not None:
                cls._instance.dispatcher.close()
                for lease in cls._instance.gateway_leases.values():  # after the unbind
                    lease.release()
                cls._instance.context.close()
                cls._instance = None


def gateway_providers() -> list[str]:
    """The SMPP accounts this worker process is the gateway of (``BROADCASTER_GATEWAYS``)."""
    return [p for p in os.environ.get("BROADCASTER_GATEWAYS", "").split(",") if p]


def publish(name: str, args: list[Any], *, queue: str, countdown: float | None = None) -> None:
    """Send a task, once more when kombu published it on a channel it had itself closed.

    kombu's SQL transport (the embedded broker) takes a locked SQLite file for a lost connection: when that
    happens twice in one publish, kombu reconnects while declaring the queue, closing the channel its publish
    already holds, and then fails on it with ``AttributeError: 'NoneType' object has no attribute 'client'``.
    Nothing was stored then; the second try takes a fresh channel from the pool."""
    try:
        app.send_task(name, args=args, queue=queue, countdown=countdown)
    except AttributeError:
        if not app.conf.broker_url.startswith("sqla+"):
            raise
        log.warning("the SQL broker closed its channel while publishing %s; publishing it again", name)
        app.send_task(name, args=args, queue=queue, countdown=countdown)


class CeleryEnqueuer:
    def plan_run(self, run_id: int) -> None:
        publish("broadcaster.plan_run", [run_id], queue=PLAN_QUEUE)

    def dispatch_chunk(self, chunk_id: int, *, queue: str) -> None:
        publish("broadcaster.dispatch_chunk", [chunk_id], queue=queue)

    def apply_inbound(self, provider: str) -> None:
        publish("broadcaster.apply_inbound", [provider], queue=inbound_queue(provider))


@app.task(name="broadcaster.plan_run")  # type: ignore[untyped-decorator]
def plan_run_task(run_id: int) -> int:
    state = WorkerState.get()
    with log_fields(run_id=run_id):
        return plan_run(
            state.context.sessions,
            run_id=run_id,
            settings=state.context.settings,
            clock=state.context.clock,
            enqueuer=CeleryEnqueuer(),
        )


@app.task(name="broadcaster.dispatch_chunk")  # type: ignore[untyped-decorator]
def dispatch_chunk_task(chunk_id: int) -> dict[str, Any]:
    state = WorkerState.get()
    if not state.hold_gateways():
        raise Reject("the gateway is stopping before it could bind", requeue=True)
    summary = state.dispatcher.run_chunk(chunk_id)
    return summary.__dict__


@app.task(name="broadcaster.apply_inbound")  # type: ignore[untyped-decorator]
def apply_inbound_task(provider: str, attempt: int = 1) -> int:
    state = WorkerState.get()
    sessions, clock = state.context.sessions, state.context.clock
    replies = ReplyRules.from_settings(state.context.settings)
    # One applier per provider at a time: a second one would parse the same records for nothing.
    with log_fields(provider=provider):
        passes = apply_pending_exclusively(sessions, provider=provider, clock=clock, replies=replies)
    if passes is None:
        return 0  # the applier at work was asked for one more pass
    settled = sum(done for done, _waiting in passes)
    waiting = passes[-1][1]
    if waiting and attempt < INBOUND_RETRIES:
        publish(
            "broadcaster.apply_inbound",
            [provider, attempt + 1],
            queue=inbound_queue(provider),
            countdown=INBOUND_RETRY_SECONDS,
        )
    return settled


def engine_tick(
    sessions: sessionmaker[Session], *, settings: Settings, clock: Clock, enqueuer: Enqueuer
) -> TickReport:
    """The tick every runner calls (beat, ``run``, ``run --once``, the Celery task): the outbox's tick,
    retention at most once a day (broadcaster/retention.py), then its heartbeat and the admins' alerts
    (broadcaster/observe)."""
    report = tick(sessions, settings=settings, clock=clock, enqueuer=enqueuer)
    retained = run_daily(sessions, settings=settings, clock=clock)
    if retained is not None:
        report.retained, report.inbound_deleted = retained.total, retained.inbound_deleted
    record_beat(sessions, clock=clock)  # `health` and the alerts see a stopped tick by this row's age
    evaluate_alerts(AppContext(settings, sessions.kw["bind"], sessions, readers_of(sessions), clock))
    return report


@app.task(name="broadcaster.tick")  # type: ignore[untyped-decorator]
def tick_task() -> None:
    state = WorkerState.get()
    engine_tick(
        state.context.sessions,
        settings=state.context.settings,
        clock=state.context.clock,
        enqueuer=CeleryEnqueuer(),
    )


@after_setup_logger.connect  # type: ignore[untyped-decorator]
@after_setup_task_logger.connect  # type: ignore[untyped-decorator]
def _log_format(logger: logging.Logger, **_kwargs: Any) -> None:
    """Celery has set up its log handlers: in JSON format they write one object per line, with the fields of
    the work at hand (``[logging] format``, which ``--log-format`` sets for the workers it starts)."""
    if configured_log_format() == "json":
        for handler in logger.handlers:
            write_json(handler)


@worker_init.connect  # type: ignore[untyped-decorator]
def _follow_the_engine(**_kwargs: Any) -> None:
    """An embedded worker stops when the ``send --wait`` or ``run`` that started it is gone."""
    parent = expected_parent()
    if parent is not None:
        grace = load_settings().delivery.orphan_grace_seconds
        follow_parent(parent, grace=grace, what=f"worker {os.getpid()}")


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _follow_the_worker(**_kwargs: Any) -> None:
    """A pool child of an embedded worker stops with it (the parent-death signal does not survive fork)."""
    if expected_parent() is not None:
        grace = load_settings().delivery.orphan_grace_seconds
        follow_parent(os.getppid(), grace=grace, what=f"pool process {os.getpid()}")


@worker_ready.connect  # type: ignore[untyped-decorator]
def _open_gateways(**_kwargs: Any) -> None:
    """An SMS gateway worker binds at start, so receipts and MO flow even before anything is sent; but only
    once it holds its account's lease (one gateway per account)."""
    state = WorkerState.get() if gateway_providers() else None
    if state is None or not state.hold_gateways():
        return
    for provider in state.gateway_leases:
        state.adapters.get(provider)


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _close(sender: Any = None, **_kwargs: Any) -> None:
    """Unbind, release the leases, close the database: the worker's last signal, after Celery has stopped
    consuming and closed its broker connection.

    A gateway then exits at once: the interpreter's own teardown (freeing the heap object by object) took
    seconds more on a loaded machine, while the SMPP account's next gateway waited for the lease."""
    WorkerState.close()
    if gateway_providers():
        logging.shutdown()  # flush the log handlers: os._exit skips atexit
        for stream in (sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
        os._exit(int(getattr(sender, "exitcode", 0) or 0))


if os.environ.get("BROADCASTER_CONFIG"):
    configure(load_settings())


def declare_queues(settings: Settings, names: Sequence[str], *, attempts: int = 5) -> None:
    """Create a worker's queues on an SQL broker before Celery starts.

    kombu's SQL transport creates its tables, then a queue's row, by "look, then create": two workers starting
    at one instant on a new broker both create them, and one dies at start ("table already exists", or the
    UNIQUE constraint of the queue's name). Declared here first, with a fresh connection per try, the loser of
    that race finds them on its next try."""
    from kombu.connection import Connection
    from kombu.entity import Queue
    from sqlalchemy.exc import IntegrityError, OperationalError

    url = celery_config(settings)["broker_url"]
    if not str(url).startswith("sqla+"):
        return  # RabbitMQ and Redis declare queues atomically
    for name in names:
        for attempt in range(1, attempts + 1):
            try:
                with Connection(url) as connection:  # type: ignore[no-untyped-call]  # kombu is untyped
                    Queue(name, channel=connection.default_channel).declare()  # type: ignore[no-untyped-call]
                break
            except (IntegrityError, OperationalError):
                if attempt == attempts:
                    raise
