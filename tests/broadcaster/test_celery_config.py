"""The Celery configuration each deployment gets from its broker URL (broadcaster/tasks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.settings import CONFIG_FILENAME, load_settings
from broadcaster.tasks import celery_config


def test_the_embedded_broker_waits_for_its_file_lock(workdir: Path) -> None:
    config = celery_config(load_settings(workdir / CONFIG_FILENAME))

    assert config["broker_url"].startswith("sqla+sqlite:///")
    assert config["broker_transport_options"] == {"connect_args": {"timeout": 30}}
    # Late acks with a task in reserve: kombu's SQL transport sleeps a second whenever a worker may take
    # nothing more, so without the reserve every finished chunk would wait for that second.
    assert config["task_acks_late"]
    assert config["worker_prefetch_multiplier"] == 2


def test_rabbitmq_publishes_with_confirms(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADCASTER_BROKER__URL", "amqp://guest:guest@127.0.0.1:5672//")
    config = celery_config(load_settings(workdir / CONFIG_FILENAME))

    assert config["broker_transport_options"] == {"confirm_publish": True}
