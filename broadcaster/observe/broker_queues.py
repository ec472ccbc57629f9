"""How many tasks wait in each of the engine's queues, asked of the broker itself.

- RabbitMQ: a passive ``queue.declare`` answers the ready messages and the consumers (AMQP 0-9-1 §1.7.2.1);
  the unacknowledged ones are only in the management API, which may be off, so they are left out.
- Redis: kombu keeps a queue as a list (``LLEN``, one list per priority step) and the tasks delivered but not
  acknowledged in the ``unacked`` hash, each with its routing key; consumers are not known.
- kombu's SQL transport (embedded): ``kombu_message`` rows, visible (ready) or not (delivered, unacked).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import create_engine, text

from broadcaster.outbox import queues as outbox_queues
from broadcaster.settings import Settings
from channels.registry import load_adapter_class

# kombu's Redis transport: a queue with priorities is one list per step, named queue + separator + step.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
REDIS_UNACKED = "unacked"


@dataclass(frozen=True)
class QueueDepth:
    """One queue: tasks ready to be taken, delivered but not acknowledged, and consumers (None: the broker
    does not say); ``exists`` is False for a queue no worker or sender has declared yet."""

    name: str
    ready: int | None
    unacked: int | None
    consumers: int | None
    exists: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def engine_queues(settings: Settings) -> list[str]:
    """The queues of this installation: planning, each provider's send queue and its urgent one, and each
    inbound provider's receipts queue where the engine has one (``outbox.queues.inbound_queue``)."""
    names = [outbox_queues.PLAN_QUEUE]
    inbound_queue = getattr(outbox_queues, "inbound_queue", None)
    for name, provider in sorted(settings.providers.items()):
        names.append(outbox_queues.send_queue(provider.channel, name))
        names.append(outbox_queues.send_queue(provider.channel, name, urgent=True))
        if inbound_queue is not None and load_adapter_class(provider.type).capabilities.inbound:
            names.append(inbound_queue(name))
    return list(dict.fromkeys(names))


def queue_depths(settings: Settings, names: Sequence[str], *, timeout: float) -> list[QueueDepth]:
    url = settings.broker_url
    if url.startswith("amqp") or url.startswith("pyamqp"):
        return _rabbitmq(url, names, timeout=timeout)
    if url.startswith(("redis", "rediss")):
        return _redis(url, names, timeout=timeout)
    if url.startswith("sqla+"):
        return _sql(url.removeprefix("sqla+"), names)
    raise ValueError(f"broker.url: no queue reader for {url.split(':', 1)[0]}://")


def _rabbitmq(url: str, names: Sequence[str], *, timeout: float) -> list[QueueDepth]:
    from amqp.exceptions import NotFound  # type: ignore[import-untyped]
    from kombu.connection import Connection

    depths = []
    with Connection(url, connect_timeout=timeout) as connection:  # type: ignore[no-untyped-call]
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        channel = connection.channel()
        for name in names:
            try:
                _name, ready, consumers = channel.queue_declare(queue=name, passive=True)
            except NotFound:  # the broker closed the channel: a new one for the next queue
                depths.append(QueueDepth(name, None, None, None, exists=False))
                channel = connection.channel()
                continue
            depths.append(QueueDepth(name, ready, None, consumers))
        channel.close()
    return depths


def _redis(url: str, names: Sequence[str], *, timeout: float) -> list[QueueDepth]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        unacked = Counter(_routing_key(value) for value in client.hvals(REDIS_UNACKED))
        depths = []
        for name in names:
            lists = [
                name if step == 0 else f"{name}{REDIS_PRIORITY_SEPARATOR}{step}"
                for step in REDIS_PRIORITY_STEPS
            ]
            ready = sum(int(client.llen(key)) for key in lists)
            exists = ready > 0 or unacked[name] > 0 or bool(client.exists(f"_kombu.binding.{name}"))
            depths.append(QueueDepth(name, ready, unacked[name], None, exists=exists))
    finally:
        client.close()
    return depths


def _routing_key(value: bytes | str) -> str:
    """kombu stores an unacked task as ``[message, exchange, routing_key]``; Celery routes by queue name."""
    try:
        return str(json.loads(value)[2])
    except (ValueError, IndexError, TypeError):
        return ""


def _sql(url: str, names: Sequence[str]) -> list[QueueDepth]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if "kombu_queue" not in engine.dialect.get_table_names(connection):
                return [QueueDepth(name, None, None, None, exists=False) for name in names]
            rows = connection.execute(
                text(
                    "SELECT q.name, m.visible, COUNT(m.id) FROM kombu_queue q "
                    "LEFT JOIN kombu_message m ON m.queue_id = q.id GROUP BY q.name, m.visible"
                )
            ).all()
    finally:
        engine.dispose()
    ready: Counter[str] = Counter()
    unacked: Counter[str] = Counter()
    known = set()
    for name, visible, count in rows:
        known.add(name)
        if visible is None:
            continue
        (ready if visible else unacked)[name] += count
    return [
        QueueDepth(name, ready[name], unacked[name], None, exists=name in known)
        if name in known
        else QueueDepth(name, None, None, None, exists=False)
        for name in names
    ]
