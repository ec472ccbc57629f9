"""The Redis rate bucket of a distributed deployment: the database bucket's shares (no 100 ms slice above
its share of ``tps``, however many processes draw), plus slowing on throttling answers, recovering
gradually, and urgent traffic drawing first. Against a redis-server of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from broadcaster.outbox.ratelimit import SLICE_SECONDS, Slot, urgent_traffic
from broadcaster.outbox.redis_ratelimit import HALVING_GAP_SECONDS, RedisBucket, RedisPacer
from broadcaster.settings import Settings
from tests.broadcaster.delivery.test_rate_limit import EPOCH, SimulatedTime
from tests.conftest import free_port
from tests.peers.redis_server import own_redis

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with own_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def bucket(redis_url: str) -> Iterator[RedisBucket]:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # the test's own server: each test starts with no buckets
    yield RedisBucket(client, throttle_floor=0.1, recovery_per_second=0.05)
    client.close()


def slices_of(grants: list[tuple[float, int]]) -> Counter[int]:
    """Tokens per 100 ms slice of the epoch (slot starts are floats: a write exactly at one may read a few
    microseconds early)."""
    slices: Counter[int] = Counter()
    for at, tokens in grants:
        slices[int(at / SLICE_SECONDS + 1e-4)] += tokens
    return slices


@pytest.mark.slow
def test_processes_drawing_from_one_bucket_keep_every_slice_to_its_share(redis_url: str) -> None:
    """Three processes (as three gateway hosts would) draw 16 tokens at a time from one 200/s bucket, 30
    grants each: no 100 ms slice carries more than 20, and they took turns (slices shared by several)."""
    rate, processes = 200.0, 3
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    drawers = [
        subprocess.Popen(  # noqa: S603  our interpreter running the test's drawer
            [
                sys.executable,
                "-m",
                "tests.broadcaster.delivery.redis_drawer",
                redis_url,
                "shared",
                str(rate),
                "30",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    grants_per_process = []
    for drawer in drawers:
        out, _ = drawer.communicate(timeout=60)
        assert drawer.returncode == 0
        grants_per_process.append(
            [(float(at), int(n)) for at, n in (line.split() for line in out.splitlines() if line)]
        )

    slices = slices_of([grant for grants in grants_per_process for grant in grants])
    assert max(slices.values()) <= rate * SLICE_SECONDS
    per_process = [{int(at / SLICE_SECONDS + 1e-4) for at, _ in grants} for grants in grants_per_process]
    shared = [s for s in slices if sum(s in mine for mine in per_process) > 1]
    assert shared, "the processes never drew in the same slice"


def test_a_throttling_answer_halves_the_share_and_it_comes_back_gradually(bucket: RedisBucket) -> None:
    assert bucket.share("b", now=EPOCH) == 1.0
    assert bucket.throttled("b", now=EPOCH) == 0.5
    # The rest of a window's throttled answers are the same signal.
    assert bucket.throttled("b", now=EPOCH + 0.1) == pytest.approx(0.5 + 0.05 * 0.1)
    assert bucket.throttled("b", now=EPOCH + HALVING_GAP_SECONDS) == pytest.approx((0.5 + 0.05) / 2)
    # Recovery: 5 % of tps per second without a throttling answer, never above the whole rate.
    halved_at = EPOCH + HALVING_GAP_SECONDS
    assert bucket.share("b", now=halved_at + 4) == pytest.approx(0.275 + 0.2)
    assert bucket.share("b", now=halved_at + 60) == 1.0
    # And never below the floor, however often the SMSC throttles.
    shares = [bucket.throttled("c", now=EPOCH + i * HALVING_GAP_SECONDS) for i in range(10)]
    assert min(shares) == pytest.approx(0.1)


def test_a_throttled_bucket_hands_out_half_its_share_per_slice(bucket: RedisBucket) -> None:
    rate = 200.0
    clock = SimulatedTime()
    pacer = RedisPacer(bucket, name="provider:sms_main", rate=rate, clock=clock)
    pacer.throttled()
    grants = []
    while clock.seconds < EPOCH + 1.0:
        granted = pacer.acquire(64)
        grants.append((clock.seconds, granted))
        clock.sleep(0.001)
    slices = slices_of(grants)
    # Half of 20 per slice, regaining 5 % of 200/s per second: 10 tokens a slice, 11 at most by the end.
    assert max(slices.values()) <= 11
    assert sum(slices.values()) >= 100


def test_urgent_traffic_draws_first(bucket: RedisBucket) -> None:
    """A normal and an urgent sender on one 100/s bucket: while the urgent one draws, the normal one gets
    nothing; when it stops, the normal one draws again."""
    clock = SimulatedTime()
    normal = RedisPacer(bucket, name="p", rate=100.0, clock=clock)
    urgent = RedisPacer(bucket, name="p", rate=100.0, clock=clock)

    assert isinstance(bucket.reserve("p", tokens=5, rate=100.0, now=clock.seconds, urgent=False), Slot)
    token = urgent_traffic.set(True)  # as the dispatcher sets it for a chunk of an urgent queue
    try:
        urgent_grants = [urgent(5) for _ in range(20)]
    finally:
        urgent_traffic.reset(token)
    urgent_done = clock.seconds
    held_back = bucket.reserve("p", tokens=5, rate=100.0, now=urgent_done, urgent=False)
    assert isinstance(held_back, float)  # the normal sender waits
    assert held_back > urgent_done

    granted = normal.acquire(5)  # sleeps past the urgent hold, then draws
    assert granted > 0
    assert clock.seconds >= held_back - 1e-6
    assert sum(urgent_grants) == 50  # five slices of 10, in four slots of 2 or 3


def test_the_backend_follows_the_broker_unless_set(tmp_path: Path) -> None:
    assert (
        Settings(broker={"url": "redis://127.0.0.1:6379/3"}).rate_limit_redis_url()
        == "redis://127.0.0.1:6379/3"
    )
    assert Settings(broker={"url": "amqp://guest@127.0.0.1//"}).rate_limit_redis_url() is None
    chosen = Settings(rate_limit={"backend": "database"}, broker={"url": "redis://127.0.0.1:6379/3"})
    assert chosen.rate_limit_redis_url() is None
    with pytest.raises(ValueError, match=r"rate_limit\.backend"):
        Settings(rate_limit={"backend": "redis"}, broker={"url": "amqp://guest@127.0.0.1//"})
    with pytest.raises(ValueError, match=r"rate_limit\.redis_url"):
        Settings(rate_limit={"redis_url": "http://x"})


def test_a_pacer_waits_while_redis_is_away_and_goes_on_when_it_is_back(tmp_path: Path) -> None:
    """The bucket's Redis server restarts (its scripts gone with it): the sender writes nothing meanwhile and
    asks again; once the server is back, it draws as before."""
    import redis

    port = free_port()
    back = ExitStack()
    restarted: list[str] = []

    class RestartingTime(SimulatedTime):
        def sleep(self, seconds: float) -> None:
            if not restarted:  # the first wait for the server: it comes back
                restarted.append(back.enter_context(own_redis(tmp_path / "back", port=port)))
            super().sleep(seconds)

    clock = RestartingTime()
    with own_redis(tmp_path / "first", port=port) as url:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        bucket = RedisBucket(client, throttle_floor=0.1, recovery_per_second=0.05)
        pacer = RedisPacer(bucket, name="p", rate=100.0, clock=clock)
        assert pacer.acquire(2) == 2
    try:
        assert pacer.acquire(2) == 2
        assert restarted, "the pacer never waited for the server"
    finally:
        client.close()
        back.close()
