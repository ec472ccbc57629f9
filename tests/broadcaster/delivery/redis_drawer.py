"""One process drawing from a Redis rate bucket as a gateway would, for ``test_redis_rate_limit``.

``python -m tests.broadcaster.delivery.redis_drawer URL NAME RATE GRANTS`` asks for ``WANTED`` tokens at a
time until it got ``GRANTS`` grants and prints, per grant, the epoch second it was granted at and its tokens.
"""

from __future__ import annotations

import sys
import time

import redis

from broadcaster.clock import SystemClock
from broadcaster.outbox.redis_ratelimit import RedisBucket, RedisPacer

WANTED = 16


def main(url: str, name: str, rate: float, grants: int) -> None:
    bucket = RedisBucket(redis.Redis.from_url(url), throttle_floor=0.1, recovery_per_second=0.05)
    pacer = RedisPacer(bucket, name=name, rate=rate, clock=SystemClock())
    lines = []
    for _ in range(grants):
        granted = pacer.acquire(WANTED)
        lines.append(f"{time.time():.6f} {granted}")  # written now: counted in the slice it lands in
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
