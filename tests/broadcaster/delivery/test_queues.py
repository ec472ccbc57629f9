"""``broadcaster queues``: tasks waiting per queue, from the broker itself (RabbitMQ, Redis of the test's own,
kombu's SQL transport)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from broadcaster.observe.broker_queues import QueueDepth, engine_queues, queue_depths
from broadcaster.outbox.queues import PLAN_QUEUE, send_queue
from broadcaster.tasks import CeleryEnqueuer, configure
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_embedded import rabbitmq_url  # noqa: F401  (a fixture)
from tests.broadcaster.test_cli import Cli
from tests.conftest import free_port, service_unavailable
from tests.peers.polling import wait_until

MAIL_QUEUE = send_queue("email", "mail")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A redis-server of this test's own on a free port (the machine's one is shared)."""
    server = shutil.which("redis-server")
    if server is None:
        service_unavailable("Redis", "redis-server is not installed")
        return
    port = free_port()
    # The test's own server on a fixed argument list: nothing untrusted.
    process = subprocess.Popen(  # noqa: S603
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(answers, what=f"redis-server on port {port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


def enqueue(pipeline: Pipeline) -> None:
    """Three runs to plan and one e-mail chunk, published as the engine publishes them."""
    configure(pipeline.context.settings)
    enqueuer = CeleryEnqueuer()
    for run_id in (1, 2, 3):
        enqueuer.plan_run(run_id)
    enqueuer.dispatch_chunk(7, queue=MAIL_QUEUE)


def take_one_without_ack(pipeline: Pipeline) -> tuple[Any, Any]:
    """A worker's view: one planning task delivered and not acknowledged (late acks)."""
    from kombu.connection import Connection
    from kombu.entity import Queue

    connection = Connection(pipeline.context.settings.broker_url)  # type: ignore[no-untyped-call]
    message = wait_until(
        lambda: Queue(PLAN_QUEUE)(connection.default_channel).get(no_ack=False),  # type: ignore[no-untyped-call]
        what="a planning task to take",
    )
    return connection, message


def depths(pipeline: Pipeline) -> dict[str, QueueDepth]:
    names = engine_queues(pipeline.context.settings)
    return {d.name: d for d in queue_depths(pipeline.context.settings, names, timeout=5)}


def test_the_engine_queues_are_listed() -> None:
    from broadcaster.settings import Settings

    settings = Settings(providers={"mail": {"channel": "email", "type": "smtp", "host": "h"}})
    names = engine_queues(settings)
    assert names[:3] == [PLAN_QUEUE, MAIL_QUEUE, f"{MAIL_QUEUE}.urgent"]


def depths_with_one_unacked(pipeline: Pipeline) -> dict[str, QueueDepth]:
    """Three planning tasks and a chunk published, one planning task taken and not acknowledged: two ready
    and one unacked in ``plan``, one ready in the mail queue."""
    enqueue(pipeline)
    connection, _message = take_one_without_ack(pipeline)
    try:
        got = depths(pipeline)
    finally:
        connection.close()
    assert (got[PLAN_QUEUE].ready, got[PLAN_QUEUE].unacked) == (2, 1)
    assert (got[MAIL_QUEUE].ready, got[MAIL_QUEUE].unacked) == (1, 0)
    return got


def test_sql_broker_counts_ready_and_unacked(pipeline: Pipeline) -> None:
    got = depths_with_one_unacked(pipeline)
    assert not got[f"{MAIL_QUEUE}.urgent"].exists


@pytest.mark.services
def test_redis_counts_its_lists_and_the_unacked_hash(make_pipeline: PipelineFactory, redis_url: str) -> None:
    got = depths_with_one_unacked(make_pipeline(broker_url=redis_url))
    assert got[PLAN_QUEUE].consumers is None  # Redis does not know its consumers


@pytest.mark.services
def test_rabbitmq_answers_ready_and_consumers_by_passive_declare(
    make_pipeline: PipelineFactory,
    rabbitmq_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = make_pipeline(broker_url=rabbitmq_url)
    enqueue(pipeline)

    def counted() -> dict[str, QueueDepth] | None:
        got = depths(pipeline)
        return got if got[PLAN_QUEUE].ready == 3 else None

    got = wait_until(counted, what="RabbitMQ counting the three planning tasks")
    assert got[MAIL_QUEUE].ready == 1
    assert got[PLAN_QUEUE].consumers == 0
    assert got[PLAN_QUEUE].unacked is None  # only the management API knows
    assert not got[f"{MAIL_QUEUE}.urgent"].exists

    monkeypatch.chdir(pipeline.directory)
    listed = json.loads(Cli(monkeypatch)("queues", "--json").stdout)
    assert {"name": PLAN_QUEUE, "ready": 3, "unacked": None, "consumers": 0, "exists": True} in listed

    # A worker consuming the mail queue, with prefetch 1: RabbitMQ counts it, and the message it holds
    # unacknowledged is no longer ready.
    from kombu.connection import Connection

    with Connection(rabbitmq_url) as connection:  # type: ignore[no-untyped-call]
        channel = connection.channel()
        channel.basic_qos(0, 1, False)
        held: list[object] = []
        channel.basic_consume(MAIL_QUEUE, callback=held.append)

        def consumed() -> dict[str, QueueDepth] | None:
            if not held:
                with contextlib.suppress(TimeoutError):  # nothing delivered yet: look again
                    connection.drain_events(timeout=0.2)
            got = depths(pipeline)
            return got if held and got[MAIL_QUEUE].consumers == 1 else None

        got = wait_until(consumed, what="RabbitMQ counting the mail queue's consumer")
        assert got[MAIL_QUEUE].ready == 0
        channel.close()
