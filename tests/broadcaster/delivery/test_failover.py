"""Two SMSC accounts on one route ([routes.sms_main]): when one SMSC stops, the gateway of its account
moves its chunk's queued messages to the other account (each sent once, none lost); when the SMSC is back,
the account carries its share again. Real sandbox SMSCs, the real gateway dispatcher."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from broadcaster.db.models import ProviderHealth
from broadcaster.outbox.dispatch import DispatchSummary, dispatcher_for
from channels.sandbox.smsc import SandboxSmsc, SmscBehaviour
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_sms_delivery import SHORT_SMS, sms_only
from tests.broadcaster.delivery.workdir_files import citizen, citizens, provider_sections
from tests.peers.polling import wait_until

RECIPIENTS = 40
MANY = 120


def backup_account(port: int) -> dict[str, Any]:
    """A second SMPP account like ``sms_main``, at another SMSC."""
    return {**provider_sections(smtp_port=25, smpp_port=port)["providers.sms_main"], "system_id": "skhcn2"}


def state_of(pipeline: Pipeline, provider: str) -> str | None:
    with pipeline.context.readers() as session:
        row = session.get(ProviderHealth, provider)
        return None if row is None else row.state


def sent_once(pipeline: Pipeline, run_id: int) -> Counter[str]:
    """Messages per account; asserts every message went out exactly once."""
    messages = pipeline.messages(run_id)
    assert {(m.status.value, m.attempts) for m in messages} <= {("sent", 1), ("delivered", 1)}
    return Counter(m.provider for m in messages)


def sent_once_or_again(pipeline: Pipeline, run_id: int) -> Counter[str]:
    """Messages per account; asserts every message went out (after a deferral, a second attempt)."""
    messages = pipeline.messages(run_id)
    assert {m.status.value for m in messages} <= {"sent", "delivered"}
    return Counter(m.provider for m in messages)


def test_a_stopped_smsc_s_traffic_moves_to_the_other_account_and_comes_back_when_it_returns(
    make_pipeline: PipelineFactory,
) -> None:
    backup = SandboxSmsc(host="127.0.0.1")
    backup.start()
    pipeline = make_pipeline(
        providers={"sms_backup": backup_account(backup.port)},
        settings_sections={
            "routes.sms_main": {"default": [["sms_main", 1], ["sms_backup", 1]]},
            "routing": {"failover_after_seconds": 0.0},
        },
    )
    main_port = pipeline.smsc.port
    returned: SandboxSmsc | None = None
    gateway = dispatcher_for(pipeline.context, gateway=True, enqueuer=pipeline.enqueuer)
    try:
        pipeline.add_contacts(citizens(RECIPIENTS))
        campaign_id = sms_only(pipeline, text=SHORT_SMS, unaccented=True)
        pipeline.smsc.stop()
        run_id = pipeline.start_run(campaign_id)
        pipeline.plan(run_id)
        planned = Counter(m.provider for m in pipeline.messages(run_id))
        assert set(planned) == {"sms_main", "sms_backup"}  # both up when planned: shared by weight

        [main_chunk] = [c for c, queue in pipeline.enqueuer.chunks if queue == "send.sms.sms_main"]
        pipeline.enqueuer.chunks.remove((main_chunk, "send.sms.sms_main"))
        # The link's health is stamped on the machine's calendar: the engine's frozen one is set a little ahead
        # of it (before the chunk starts, so its deadline counts from there), and the outage is old enough.
        pipeline.clock.set(datetime.now(UTC) + timedelta(seconds=5))
        summaries: list[DispatchSummary] = []
        sender = threading.Thread(target=lambda: summaries.append(gateway.run_chunk(main_chunk)), daemon=True)
        sender.start()
        sender.join(timeout=60)
        assert not sender.is_alive(), "the gateway kept waiting for its stopped SMSC"
        assert summaries[0].sent == 0
        assert "moved" in (summaries[0].stopped or "")

        pipeline.drain()  # the backup's chunks: its own and the moved messages'
        assert sent_once(pipeline, run_id) == {"sms_backup": RECIPIENTS}
        assert len({r.destination for r in backup.accepted}) == RECIPIENTS == len(backup.accepted)

        # The SMSC comes back: the gateway binds again, and the next run shares by weight again.
        returned = SandboxSmsc(host="127.0.0.1", port=main_port)
        returned.start()
        gateway.adapters.get("sms_main")  # the gateway's adapter keeps reconnecting in the background
        wait_until(lambda: state_of(pipeline, "sms_main") == "up", timeout=30, what="sms_main bound again")
        again = pipeline.start_run(campaign_id, again=True)
        pipeline.plan(again)
        pipeline.drain()
        shares = sent_once(pipeline, again)
        assert shares == planned
        assert len(returned.accepted) == planned["sms_main"]
    finally:
        if returned is None:
            returned = SandboxSmsc(host="127.0.0.1", port=main_port)
            returned.start()
        gateway.close()
        returned.stop()
        backup.stop()


def test_an_account_whose_smsc_keeps_refusing_for_now_trips_and_its_queued_messages_move(
    make_pipeline: PipelineFactory,
) -> None:
    """sms_main's SMSC answers every submit_sm with ESME_RTHROTTLED past the retries: its windows end
    deferred, the outcome window trips the account (``degraded``), and when the deferred messages are due
    again the tick cuts their chunks for sms_backup; each message goes out once."""
    backup = SandboxSmsc(host="127.0.0.1")
    backup.start()
    try:
        pipeline = make_pipeline(
            smsc=SmscBehaviour(throttle_every=1, receipts=False),
            sms={"throttle_retries": 1},
            providers={"sms_backup": backup_account(backup.port)},
            settings_sections={
                "routes.sms_main": {"default": [["sms_main", 1], ["sms_backup", 1]]},
                "routing": {"min_outcomes": 8, "max_error_share": 0.5, "probe_after_seconds": 7200},
            },
        )
        pipeline.add_contacts(citizens(MANY))
        campaign_id = sms_only(pipeline, text=SHORT_SMS, unaccented=True)
        run_id = pipeline.start_run(campaign_id)
        pipeline.plan(run_id)
        planned = Counter(m.provider for m in pipeline.messages(run_id))
        assert planned["sms_main"] > 8

        pipeline.drain()
        assert state_of(pipeline, "sms_main") == "degraded"
        pipeline.advance(minutes=31)  # past the deferred messages' back-off
        pipeline.tick()
        pipeline.drain()

        assert sent_once_or_again(pipeline, run_id) == {"sms_backup": MANY}
        assert len({r.destination for r in backup.accepted}) == MANY == len(backup.accepted)
        assert pipeline.smsc.accepted == []
    finally:
        backup.stop()


def test_planning_routes_each_message_by_its_contacts_allocated_carrier(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline(
        providers={"sms_backup": backup_account(2775)},
        settings_sections={"routes.sms_main": {"Viettel": [["sms_backup", 1]], "default": [["sms_main", 1]]}},
    )
    viettel = [citizen(n, phone=f"0981{n:06d}") for n in range(1, 11)]
    pipeline.add_contacts([*citizens(10, first=11), *viettel])  # 091…: Vinaphone; 098…: Viettel
    run_id = pipeline.start_run(sms_only(pipeline, text=SHORT_SMS, unaccented=True))
    pipeline.plan(run_id)

    routed = {(m.address[:6], m.provider) for m in pipeline.messages(run_id)}
    assert routed == {("+84912", "sms_main"), ("+84981", "sms_backup")}
    assert sorted(queue for _, queue in pipeline.enqueuer.chunks) == [
        "send.sms.sms_backup",
        "send.sms.sms_main",
    ]
