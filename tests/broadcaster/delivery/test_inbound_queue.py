"""Receipts have queues of their own (``inbound.<provider>``): one is applied while the plan and e-mail queues
are full, and every queue the engine can send a task to has a worker that consumes it (in the spirit of
GOV.UK Notify's ``test_all_queues_used``)."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from broadcaster import tasks
from broadcaster.cli import app
from broadcaster.db.models import InboundRecord, Message
from broadcaster.outbox.inbound import inbound_batch_handler
from broadcaster.outbox.queues import PLAN_QUEUE, send_queue
from broadcaster.runtime import INBOUND_WORKER, worker_specs
from broadcaster.settings import Settings
from broadcaster.vocabulary import MessageStatus
from channels.registry import ADAPTERS, load_adapter_class
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Started, start_cli
from tests.broadcaster.delivery.test_embedded import rabbitmq_url
from tests.broadcaster.test_inbound import PROVIDER, receipt, sent_sms
from tests.peers.polling import wait_until

__all__ = ["rabbitmq_url"]  # the fixture, shared with test_embedded

BROADCASTER = Path(tasks.__file__).resolve().parent
BACKLOG = 40  # tasks left waiting on each busy queue


@pytest.fixture(params=["sqlite", pytest.param("rabbitmq", marks=pytest.mark.services)])
def broker_pipeline(request: pytest.FixtureRequest, make_pipeline: PipelineFactory) -> Pipeline:
    """A pipeline on the embedded SQLite broker, or on a RabbitMQ virtual host of its own."""
    if request.param == "rabbitmq":
        return make_pipeline(broker_url=request.getfixturevalue("rabbitmq_url"))
    return make_pipeline()


@pytest.mark.slow
def test_a_receipt_is_applied_while_the_plan_and_email_queues_are_busy(
    broker_pipeline: Pipeline, processes: Started
) -> None:
    pipeline = broker_pipeline
    settings = pipeline.context.settings
    tasks.configure(settings)
    busy = [PLAN_QUEUE, send_queue("email", "mail"), send_queue("email", "mail", urgent=True)]
    for queue in busy:  # nobody consumes these: a receipt queued behind them would wait for ever
        for number in range(BACKLOG):
            tasks.app.send_task("broadcaster.dispatch_chunk", args=[10_000 + number], queue=queue)
    message_id = sent_sms(pipeline.context, "rcpt-1")
    # What the SMPP gateway does with a deliver_sm: store it, then ask for it to be applied.
    store = inbound_batch_handler(
        pipeline.context.sessions,
        provider=PROVIDER,
        channel="sms",
        clock=pipeline.clock,
        hand_off=lambda: tasks.CeleryEnqueuer().apply_inbound(PROVIDER),
    )
    store([receipt("rcpt-1")])

    (inbound,) = (spec for spec in worker_specs(settings) if spec.name == INBOUND_WORKER)
    assert not set(inbound.queues) & set(busy)
    start_cli(pipeline, processes, "worker", "--inbound", login=ADMIN_LOGIN, log="worker-inbound.log")

    def status() -> str | None:
        with pipeline.context.sessions() as session:
            found = session.scalar(select(Message.status).where(Message.id == message_id))
        return found if found == MessageStatus.DELIVERED else None

    wait_until(status, timeout=60, what="the receipt applied by the inbound worker")
    with pipeline.context.sessions() as session:
        assert session.scalars(select(InboundRecord.processed_at)).all() != [None]


def _every_provider_type() -> Settings:
    """A provider of every adapter type the engine knows: worker_specs reads their channel and type only."""
    providers = {
        f"p-{name}": SimpleNamespace(channel=channel.value, type=name)
        for name, (_t, channel) in ADAPTERS.items()
    }
    return cast(Settings, SimpleNamespace(providers=providers))


def _queues_the_engine_sends_to(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every queue a task goes to, found by calling the enqueuer and the applier's retry with Celery's
    ``send_task`` recorded, for every provider and both priorities."""
    sent: set[str] = set()
    default = tasks.celery_config(Settings())["task_default_queue"]  # where a task without a queue goes

    def record(_name: str, *_args: Any, queue: str | None = None, **_kwargs: Any) -> None:
        sent.add(queue or default)

    monkeypatch.setattr(tasks.app, "send_task", record)
    enqueuer = tasks.CeleryEnqueuer()
    enqueuer.plan_run(1)
    tasks.app.send_task("broadcaster.tick")  # the tick task goes to the default queue
    for name, provider in settings.providers.items():
        for urgent in (False, True):  # the only queues chunks are cut for (outbox/chunks.py, single.py)
            enqueuer.dispatch_chunk(1, queue=send_queue(provider.channel, name, urgent=urgent))
        if load_adapter_class(provider.type).capabilities.inbound:  # only these hand receipts over
            enqueuer.apply_inbound(name)
    return sent


def test_every_queue_the_engine_sends_to_has_a_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _every_provider_type()
    sent = _queues_the_engine_sends_to(settings, monkeypatch)
    consumed = {queue for spec in worker_specs(settings) for queue in spec.queues}
    assert sent - consumed == set()
    assert {q for q in sent if q.startswith("inbound.")} == {"inbound.p-smpp"}
    # The inbound worker consumes nothing else: receipts never wait behind sends or planning.
    (inbound,) = (spec for spec in worker_specs(settings) if spec.name == INBOUND_WORKER)
    assert inbound.queues == ("inbound.p-smpp",)


def test_tasks_are_sent_only_through_the_enqueuer_module() -> None:
    """The queue list above is complete only if no other module sends a task to a queue of its own."""
    senders = []
    for path in BROADCASTER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in {"send_task", "apply_async", "delay"}:
                senders.append(path.relative_to(BROADCASTER).as_posix())
    assert set(senders) == {"tasks.py"}


def test_a_worker_takes_one_way_of_naming_its_queues() -> None:
    result = CliRunner().invoke(app, ["worker", "--inbound", "--queues", "plan"])
    assert result.exit_code == 1
    assert "--gateway, --inbound and --queues" in result.stderr
