"""The Celery configuration each deployment gets from its broker URL (broadcaster/tasks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kombu.transport import sqlalchemy as kombu_sql

from broadcaster.settings import CONFIG_FILENAME, load_settings
from broadcaster.tasks import SQL_BROKER_POLL_SECONDS, celery_config


def test_the_embedded_broker_waits_for_its_file_lock_and_is_polled_often(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kombu's SQL transport would sleep a whole second whenever a worker process finishes a task and the
    next one waits in the queue."""
    monkeypatch.setattr(kombu_sql.Transport, "polling_interval", 1.0)  # kombu's default, restored afterwards
    config = celery_config(load_settings(workdir / CONFIG_FILENAME))

    assert config["broker_url"].startswith("sqla+sqlite:///")
    assert config["broker_transport_options"] == {"connect_args": {"timeout": 30}}
    assert kombu_sql.Transport.polling_interval == SQL_BROKER_POLL_SECONDS < 1.0
    assert config["task_acks_late"] and config["worker_prefetch_multiplier"] == 1


def test_rabbitmq_publishes_with_confirms_and_leaves_the_sql_transport_alone(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kombu_sql.Transport, "polling_interval", 1.0)
    monkeypatch.setenv("BROADCASTER_BROKER__URL", "amqp://guest:guest@127.0.0.1:5672//")
    config = celery_config(load_settings(workdir / CONFIG_FILENAME))

    assert config["broker_transport_options"] == {"confirm_publish": True}
    assert kombu_sql.Transport.polling_interval == 1.0
