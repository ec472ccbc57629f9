"""The Celery configuration each deployment gets from its broker URL (broadcaster/tasks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.settings import CONFIG_FILENAME, SettingsError, load_settings
from broadcaster.tasks import SQL_BROKER_POLL_SECONDS, celery_config, configure


def test_the_embedded_broker_waits_for_its_file_lock(workdir: Path) -> None:
    config = celery_config(load_settings(workdir / CONFIG_FILENAME))

    assert config["broker_url"].startswith("sqla+sqlite:///")
    assert config["broker_transport_options"] == {"connect_args": {"timeout": 30}}
    # Late acks with a task in reserve: kombu's SQL transport sleeps a second whenever a worker may take
    # nothing more, so without the reserve every finished chunk would wait for that second.
    assert config["task_acks_late"]
    assert config["worker_prefetch_multiplier"] == 2


def test_an_idle_worker_looks_at_the_embedded_broker_often(workdir: Path) -> None:
    """A handed-off MO opt-out must not wait kombu's default second in the queue (the opt-out race test)."""
    from kombu.connection import Connection
    from kombu.transport import sqlalchemy as kombu_sql

    configure(load_settings(workdir / CONFIG_FILENAME))
    assert kombu_sql.Transport.polling_interval == SQL_BROKER_POLL_SECONDS < 0.5
    with Connection("sqla+sqlite:///" + str(workdir / "broker-probe.sqlite3")) as connection:  # type: ignore[no-untyped-call]
        assert connection.transport.polling_interval == SQL_BROKER_POLL_SECONDS


def test_rabbitmq_publishes_with_confirms(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADCASTER_BROKER__URL", "amqp://guest:guest@127.0.0.1:5672//")
    config = celery_config(load_settings(workdir / CONFIG_FILENAME))

    assert config["broker_transport_options"] == {"confirm_publish": True}


def test_redis_gives_a_dead_workers_tasks_back_after_the_visibility_timeout(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kombu's default is an hour: 900 e-mails of a killed worker once waited for the 600 s sweeper. And kombu
    scans for them only every 100 s (10 s between looks, one look in ten): with a short timeout they waited
    that long past it (the distributed kill -9 acceptance, tests/broadcaster/delivery/test_distributed_faults.py).
    A worker killed during a scan left kombu's scan lock for its 5 minutes: it expires after one interval."""
    monkeypatch.setenv("BROADCASTER_BROKER__URL", "redis://127.0.0.1:6379/0")
    assert celery_config(load_settings(workdir / CONFIG_FILENAME))["broker_transport_options"] == {
        "visibility_timeout": 300.0,
        "unacked_restore_interval": 10.0,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 10.0,
    }
    monkeypatch.setenv("BROADCASTER_BROKER__VISIBILITY_TIMEOUT", "180")
    monkeypatch.setenv("BROADCASTER_DELIVERY__CHUNK_MAX_SECONDS", "4")
    assert celery_config(load_settings(workdir / CONFIG_FILENAME))["broker_transport_options"] == {
        "visibility_timeout": 180.0,
        "unacked_restore_interval": 10.0,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 10.0,
    }
    monkeypatch.setenv("BROADCASTER_BROKER__VISIBILITY_TIMEOUT", "6")
    options = celery_config(load_settings(workdir / CONFIG_FILENAME))["broker_transport_options"]
    assert options["unacked_restore_interval"] == 1.0
    assert options["unacked_mutex_expire"] == 1.0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("visibility_timeout", "60"),  # shorter than a chunk may run
        ("task_events", "true"),  # the embedded SQLite broker cannot carry them
    ],
)
def test_broker_settings_that_cannot_work_are_refused_naming_the_setting(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(f"BROADCASTER_BROKER__{key.upper()}", value)
    with pytest.raises(SettingsError, match=rf"broker\.{key}"):
        load_settings(workdir / CONFIG_FILENAME)


def test_task_events_are_on_with_a_real_broker_and_off_on_the_embedded_one(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flower shows the workers' tasks only when they send events; kombu's SQL transport cannot carry them."""
    embedded = celery_config(load_settings(workdir / CONFIG_FILENAME))
    assert (embedded["worker_send_task_events"], embedded["task_send_sent_event"]) == (False, False)
    monkeypatch.setenv("BROADCASTER_BROKER__URL", "amqp://guest:guest@127.0.0.1:5672//")
    distributed = celery_config(load_settings(workdir / CONFIG_FILENAME))
    assert (distributed["worker_send_task_events"], distributed["task_send_sent_event"]) == (True, True)
    monkeypatch.setenv("BROADCASTER_BROKER__TASK_EVENTS", "false")
    assert not celery_config(load_settings(workdir / CONFIG_FILENAME))["worker_send_task_events"]


def test_a_task_is_published_when_the_embedded_broker_is_locked_twice_in_one_publish(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kombu reconnects while declaring the queue and then publishes on the channel it closed; the enqueuer
    publishes once more on a fresh one, and the task is stored exactly once."""
    import sqlite3

    from kombu.transport import sqlalchemy as kombu_sql
    from sqlalchemy.exc import OperationalError

    from broadcaster.outbox.queues import PLAN_QUEUE
    from broadcaster.tasks import CeleryEnqueuer

    settings = load_settings(workdir / CONFIG_FILENAME)
    configure(settings)
    enqueuer = CeleryEnqueuer()
    enqueuer.plan_run(1)  # the queue exists, as in a running deployment
    looked_up = kombu_sql.Channel._get_or_create
    calls = 0

    def locked_twice(channel: kombu_sql.Channel, queue: str) -> object:
        nonlocal calls
        calls += 1
        if calls <= 2:  # the publish's lookup, then the declare after kombu's reconnect
            raise OperationalError("SELECT kombu_queue", {}, sqlite3.OperationalError("database is locked"))
        return looked_up(channel, queue)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(kombu_sql.Channel, "_get_or_create", locked_twice)
    enqueuer.plan_run(2)
    monkeypatch.undo()

    broker_file = settings.broker_url.removeprefix("sqla+sqlite:///")
    with sqlite3.connect(broker_file) as broker:
        stored = broker.execute(
            "SELECT count(*) FROM kombu_message JOIN kombu_queue ON kombu_queue.id = kombu_message.queue_id "
            "WHERE kombu_queue.name = ?",
            (PLAN_QUEUE,),
        ).fetchone()[0]
    assert calls > 2
    assert stored == 2
