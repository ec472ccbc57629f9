"""The real Celery path: one campaign through ``EmbeddedEngine`` (worker subprocesses + the tick), on the
embedded SQLite database and broker, and the same campaign on PostgreSQL + RabbitMQ with the same results.

The PostgreSQL run uses a schema and a RabbitMQ virtual host of its own (dropped afterwards); it skips
on a machine without the services and fails where ``BROADCASTER_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from broadcaster.cli.common import console
from broadcaster.context import AppContext
from broadcaster.outbox.queues import PLAN_QUEUE, inbound_queue, send_queue
from broadcaster.progress import wait_for_run
from broadcaster.runtime import EmbeddedEngine
from broadcaster.tasks import CeleryEnqueuer
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.workdir_files import citizens
from tests.conftest import service_unavailable

PEOPLE = 200
EXPECTED = {("email", "sent"): PEOPLE, ("sms", "delivered"): PEOPLE}
RABBITMQ_URL = os.environ.get("BROADCASTER_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def run_through_celery(pipeline: Pipeline) -> int:
    """Load and approve a campaign, then send it as `broadcaster send --wait` does: workers + tick."""
    pipeline.add_contacts(citizens(PEOPLE))
    campaign_id = pipeline.approved_campaign()
    run_id = pipeline.start_run(campaign_id)
    context = AppContext.load(pipeline.config)  # the system clock, like the workers
    try:
        with EmbeddedEngine(context, config=pipeline.config, log_dir=pipeline.directory / "logs") as engine:
            CeleryEnqueuer().plan_run(run_id)
            wait_for_run(engine, run_id, console=console, receipt_timeout=30.0, interval=0.2)
    finally:
        context.close()
    return run_id


def assert_delivered_once(pipeline: Pipeline, run_id: int) -> None:
    assert pipeline.counts(run_id) == EXPECTED
    assert pipeline.smtp.wait_for_count(PEOPLE)
    assert sorted(r for mail in pipeline.smtp.received for r in mail.rcpt_tos) == sorted(
        p["email"] for p in citizens(PEOPLE)
    )
    messages = pipeline.smsc.reassembled()
    assert len(messages) == PEOPLE
    assert all(m.complete for m in messages)
    assert {m.destination for m in messages} == {"84" + p["phone"][1:] for p in citizens(PEOPLE)}
    assert pipeline.event_count(type="delivered") == PEOPLE


@pytest.mark.slow
def test_a_campaign_through_celery_on_the_embedded_sqlite_broker(pipeline: Pipeline) -> None:
    run_id = run_through_celery(pipeline)
    assert_delivered_once(pipeline, run_id)


def _rabbitmqctl(*args: str) -> bool:
    try:
        done = subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=60, check=False)  # noqa: S603, S607  a probe for the local broker's tool on PATH
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture
def rabbitmq_url() -> Iterator[str]:
    """RabbitMQ in a virtual host of this test's own when ``rabbitmqctl`` can make one (queue names are fixed,
    and other engines may consume them on a shared machine), else the given vhost with the queues purged."""
    from kombu.connection import Connection
    from kombu.exceptions import OperationalError as KombuOperationalError

    vhost = f"delivery-{uuid.uuid4().hex[:10]}"
    user = urlsplit(RABBITMQ_URL).username or "guest"
    own = _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl(
        "set_permissions", "-p", vhost, user, ".*", ".*", ".*"
    )
    url = RABBITMQ_URL.rstrip("/") + "/" + vhost if own else RABBITMQ_URL
    queues = [PLAN_QUEUE, inbound_queue("sms_main")]
    for channel, provider in (("sms", "sms_main"), ("email", "mail")):
        queues += [send_queue(channel, provider), send_queue(channel, provider, urgent=True)]
    try:
        with Connection(url, connect_timeout=3) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1)
            for name in queues:
                channel = connection.channel()
                try:
                    channel.queue_purge(name)
                except connection.channel_errors:  # the queue does not exist yet: nothing to purge
                    pass
                finally:
                    if channel.is_open:
                        channel.close()
    except (OSError, KombuOperationalError) as exc:
        service_unavailable("RabbitMQ", f"{RABBITMQ_URL}: {exc}")
    try:
        yield url
    finally:
        if own:
            _rabbitmqctl("delete_vhost", vhost)


@pytest.mark.slow
@pytest.mark.services
def test_the_same_campaign_on_postgresql_and_rabbitmq(
    make_pipeline: PipelineFactory, postgres_url: str, rabbitmq_url: str
) -> None:
    pipeline = make_pipeline(database_url=postgres_url, broker_url=rabbitmq_url)
    assert pipeline.context.engine.dialect.name == "postgresql"

    run_id = run_through_celery(pipeline)

    assert_delivered_once(pipeline, run_id)
