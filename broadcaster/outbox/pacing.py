"""Which bucket paces a provider's traffic: a database row (``ratelimit``, the embedded engine) or Redis
(``redis_ratelimit``, a distributed deployment), as ``[rate_limit] backend`` says."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.outbox.ratelimit import SharedPacer
from broadcaster.outbox.redis_ratelimit import RedisBucket, RedisPacer
from broadcaster.settings import Settings

Pacer = Callable[[int], int]
PacerFactory = Callable[[str, float], Pacer]  # (provider, tps) -> pacer


def bucket_name(provider: str) -> str:
    return f"provider:{provider}"


def pacer_factory(sessions: sessionmaker[Session], settings: Settings, *, clock: Clock) -> PacerFactory:
    """``(provider, tps) -> pacer`` for one process; the Redis connection is opened on the first call (after
    a worker forks, never at import)."""
    url = settings.rate_limit_redis_url()
    if url is None:
        return lambda provider, tps: SharedPacer(sessions, name=bucket_name(provider), rate=tps, clock=clock)
    buckets: list[RedisBucket] = []

    def redis_pacer(provider: str, tps: float) -> Pacer:
        if not buckets:
            import redis  # the "redis" extra: only a deployment whose buckets are in Redis needs it

            buckets.append(
                RedisBucket(
                    redis.Redis.from_url(url),
                    throttle_floor=settings.rate_limit.throttle_floor,
                    recovery_per_second=settings.rate_limit.recovery_per_second,
                )
            )
        return RedisPacer(buckets[0], name=bucket_name(provider), rate=tps, clock=clock)

    return redis_pacer
