"""An SMSC that meters lower than the account's ``tps``: the sandbox SMSC answers ESME_RTHROTTLED above N
submit_sm per second, the engine (Redis bucket, the machine's clock) halves its share on those answers and
settles at or below N, and every message goes out once, none lost. And worker processes on a Redis broker
pace through the Redis bucket without being told to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from broadcaster.clock import SystemClock
from broadcaster.context import AppContext
from broadcaster.outbox.dispatch import dispatcher_for
from channels.sandbox.smsc import SmscBehaviour
from tests.broadcaster.delivery.pipeline import PipelineFactory
from tests.broadcaster.delivery.test_embedded import assert_delivered_once, run_through_celery
from tests.broadcaster.delivery.test_sms_delivery import SHORT_SMS, sms_only
from tests.broadcaster.delivery.workdir_files import citizens
from tests.peers.redis_server import own_redis

pytestmark = [pytest.mark.services, pytest.mark.slow]

TPS = 100.0  # what the account is configured for
METERED = 40  # what the SMSC accepts per second
RECIPIENTS = 240


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with own_redis(tmp_path) as url:
        yield url


def test_the_engine_settles_at_or_below_what_the_smsc_meters_without_losing_a_message(
    make_pipeline: PipelineFactory, redis_url: str
) -> None:
    pipeline = make_pipeline(
        smsc=SmscBehaviour(throttle_tps=METERED, receipts=False),
        # Throttled parts are written again by the adapter, through the bucket, until they go.
        sms={"tps": TPS, "throttle_retries": 50, "throttle_backoff": 0.1, "throttle_backoff_max": 1.0},
        settings_sections={"rate_limit": {"backend": "redis", "redis_url": redis_url}},
    )
    pipeline.add_contacts(citizens(RECIPIENTS))
    campaign_id = sms_only(pipeline, text=SHORT_SMS, unaccented=True)  # one submit_sm each
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)

    # The SMSC meters real seconds: this engine paces on the machine's clock.
    engine = AppContext.from_settings(pipeline.context.settings, clock=SystemClock())
    dispatcher = dispatcher_for(engine)
    try:
        for chunk_id, _queue in pipeline.enqueuer.chunks:
            dispatcher.run_chunk(chunk_id)
    finally:
        dispatcher.close()
        engine.close()

    messages = pipeline.messages(run_id)
    assert {(m.status.value, m.attempts) for m in messages} == {("sent", 1)}
    accepted = pipeline.smsc.accepted
    assert sorted(r.destination for r in accepted) == sorted(m.address.lstrip("+") for m in messages)
    # Writes per second as the SMSC saw them, throttled ones included: the engine's own pace.
    writes = [(datetime.fromisoformat(r.time).timestamp(), r.status) for r in pipeline.smsc.submits]
    first = writes[0][0]
    per_second = Counter(int(at - first) for at, _ in writes)
    throttled = Counter(int(at - first) for at, status in writes if status != 0)
    assert throttled[0] > 0, "the SMSC never throttled: the test shows nothing"
    # Settled: after the first two seconds (halving from 100/s takes two signals a second apart), every
    # whole second carries at most N writes, give or take the one token of recovery, and few are throttled.
    settled = [second for second in per_second if 2 <= second < max(per_second)]
    assert settled, "the run was too short to settle"
    assert max(per_second[s] for s in settled) <= METERED * 1.1
    assert sum(throttled[s] for s in settled) <= 0.1 * sum(per_second[s] for s in settled)


def test_workers_on_a_redis_broker_draw_from_the_redis_bucket(
    make_pipeline: PipelineFactory, redis_url: str
) -> None:
    """The same campaign through Celery worker processes on a Redis broker: with ``[rate_limit] backend``
    left at ``auto`` the gateway's SMPP adapter paces through the Redis bucket, and everything arrives once."""
    import redis

    pipeline = make_pipeline(broker_url=redis_url, sms={"tps": 500.0})
    assert pipeline.context.settings.rate_limit_redis_url() == redis_url

    run_id = run_through_celery(pipeline)

    assert_delivered_once(pipeline, run_id)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.hget("broadcaster:rate:provider:sms_main", "taken") is not None
    finally:
        client.close()
