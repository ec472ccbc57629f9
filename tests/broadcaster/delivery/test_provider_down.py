"""The SMSC down while a run waits: the gateway records it in ``provider_health`` (since when, the next try,
host:port and the error), claims nothing meanwhile, and sends the queued chunk as soon as the SMSC is back —
without the stuck sweeper. The progress line of ``send --wait`` says so per provider."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import ProviderHealth
from broadcaster.outbox.dispatch import DispatchSummary, dispatcher_for
from broadcaster.outbox.health import health_recorder, unreachable_notes
from channels.base import LinkHealth
from channels.sandbox.smsc import SandboxSmsc
from tests.broadcaster.delivery.pipeline import PipelineFactory
from tests.broadcaster.delivery.test_sms_delivery import SHORT_SMS, sms_only
from tests.broadcaster.delivery.workdir_files import citizens
from tests.peers.polling import wait_until


def health_of(context: AppContext, provider: str) -> ProviderHealth | None:
    with context.readers() as session:
        return session.get(ProviderHealth, provider)


def test_a_gateway_waits_for_a_stopped_smsc_and_sends_as_soon_as_it_is_back(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(5))
    campaign_id = sms_only(pipeline, text=SHORT_SMS, unaccented=True)
    port = pipeline.smsc.port
    pipeline.smsc.stop()
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    [(chunk_id, _queue)] = pipeline.enqueuer.chunks

    gateway = dispatcher_for(pipeline.context, gateway=True)
    summaries: list[DispatchSummary] = []
    sender = threading.Thread(target=lambda: summaries.append(gateway.run_chunk(chunk_id)), daemon=True)
    returned: SandboxSmsc | None = None
    try:
        sender.start()
        down = wait_until(
            lambda: (
                h
                if (h := health_of(pipeline.context, "sms_main")) is not None and h.state == "unreachable"
                else None
            ),
            what="the gateway recording the SMSC as unreachable",
        )
        assert down.detail == f"127.0.0.1:{port}: ConnectionRefusedError: [Errno 111] Connection refused"
        assert down.retry_at is not None
        assert down.retry_at >= down.since
        # Nothing was claimed while the SMSC was away: no attempt spent, nothing in `sending`.
        assert {(m.status.value, m.attempts) for m in pipeline.messages(run_id)} == {("queued", 0)}

        returned = SandboxSmsc(host="127.0.0.1", port=port)
        returned.start()
        sender.join(timeout=30)
        assert not sender.is_alive(), "the chunk did not resume after the SMSC came back"

        # No tick ran, so no sweeper: the waiting chunk itself sent everything, each message once.
        assert [s.sent for s in summaries] == [5]
        assert {(m.status.value, m.attempts) for m in pipeline.messages(run_id)} <= {
            ("sent", 1),
            ("delivered", 1),
        }
        assert len(returned.accepted) == 5
        up = health_of(pipeline.context, "sms_main")
        assert up is not None
        assert up.state == "up"
        assert up.retry_at is None
        assert up.detail == f"bound to 127.0.0.1:{port} as skhcn"
    finally:
        if returned is None:  # let the waiting chunk end before the fixture closes the database
            returned = SandboxSmsc(host="127.0.0.1", port=port)
            returned.start()
            sender.join(timeout=30)
        gateway.close()
        returned.stop()


def test_the_progress_line_says_which_provider_is_down_and_when_it_is_tried_again(
    context: AppContext, clock: FrozenClock
) -> None:
    since = datetime(2026, 11, 30, 6, 2, tzinfo=UTC)  # 13:02 in Da Nang
    clock.set(since + timedelta(minutes=3))
    record = health_recorder(context.sessions, "sms_main", clock=clock)
    record(
        LinkHealth(
            reachable=False,
            since=since,
            detail="127.0.0.1:2775: ConnectionRefusedError(111, 'Connection refused')",
            retry_at=clock.now() + timedelta(seconds=20),
        )
    )
    with context.readers() as session:
        types = {"sms_main": "smpp", "mail": "smtp"}
        assert unreachable_notes(session, types, now=clock.now()) == [
            "SMSC unreachable since 13:02, retrying in 20 s"
        ]
        assert unreachable_notes(session, {"mail": "smtp"}, now=clock.now()) == []  # only the run's own
    record(LinkHealth(reachable=True, since=clock.now(), detail="bound to 127.0.0.1:2775 as skhcn"))
    with context.readers() as session:
        assert unreachable_notes(session, types, now=clock.now()) == []
        row = session.scalar(select(ProviderHealth))
        assert row is not None
        assert row.state == "up"
        assert row.retry_at is None
