"""One process drawing from a Redis rate bucket as a gateway would, for ``test_redis_rate_limit``.

``python -m tests.broadcaster.delivery.redis_drawer URL NAME RATE GRANTS`` asks for ``WANTED`` tokens at a
time until it got ``GRANTS`` grants and prints, per grant, the epoch second at which the pacer last read the
clock (its check that the slot may still be written) and the tokens.
"""

from __future__ import annotations

import sys
from datetime import datetime

import redis

from broadcaster.clock import SystemClock
from broadcaster.outbox.redis_ratelimit import RedisBucket, RedisPacer

WANTED = 16


class ReadClock(SystemClock):
    """The machine's clock, remembering what it last said."""

    last = 0.0

    def now(self) -> datetime:
        moment = super().now()
        self.last = moment.timestamp()
        return moment


def main(url: str, name: str, rate: float, grants: int) -> None:
    bucket = RedisBucket(redis.Redis.from_url(url), throttle_floor=0.1, recovery_per_second=0.05)
    clock = ReadClock()
    pacer = RedisPacer(bucket, name=name, rate=rate, clock=clock)
    lines = []
    for _ in range(grants):
        granted = pacer.acquire(WANTED)
        lines.append(f"{clock.last:.6f} {granted}")  # when the pacer let them go
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
