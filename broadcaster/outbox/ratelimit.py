"""A token bucket in a database row, shared by every process that sends through one provider account.

Celery's ``rate_limit`` is per worker and per-process buckets pretend to be global. Here a sender reserves
tokens for one window (the balance may go negative: that is the debt), and is told how long to wait before
sending so that the provider's TPS is never exceeded. One guarded row update per window, not per message.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock
from broadcaster.db.models import RateBucket

BURST_SECONDS = 0.1  # a full bucket holds 100 ms of the rate: no burst beyond that


def reserve(sessions: sessionmaker[Session], *, name: str, tokens: int, rate: float, clock: Clock) -> float:
    """Take ``tokens`` from the bucket ``name`` refilled at ``rate``/s; return the seconds to wait first."""
    capacity = max(1.0, rate * BURST_SECONDS)
    now = clock.now()
    with sessions.begin() as session:
        bucket = session.scalar(select(RateBucket).where(RateBucket.name == name).with_for_update())
        if bucket is None:
            bucket = RateBucket(name=name, tokens=capacity, updated_at=now)
            session.add(bucket)
        elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
        available = min(capacity, float(bucket.tokens) + elapsed * rate)
        remaining = available - tokens
        bucket.tokens = remaining
        bucket.updated_at = now
    return 0.0 if remaining >= 0 else -remaining / rate
