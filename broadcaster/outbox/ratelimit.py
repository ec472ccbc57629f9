"""A provider's rate limit in a database row, shared by every process that sends through one account.

Celery's ``rate_limit`` is per worker and per-process buckets pretend to be global. Carriers meter PDUs, and
they count them per slice of time: with ``tps = 200`` no 100 ms slice may carry more than 20 submit_sm. So
the clock is cut into short slots aligned on the epoch (five per 100 ms slice), which share out the
slice's tokens, and a sender reserves tokens in the first slot that has room, waits for that slot and writes its
PDUs in it. A slice is the sum of its slots, so it never carries more than its share, whichever process
wrote into it; one guarded row update per slot's worth of PDUs.

The last slot of each slice stays quiet, so a PDU written a little late still counts in its own slice.
The row (``rate_buckets``) keeps the latest slot that has reservations (``updated_at``, its start) and how
many tokens of it are taken (``tokens``).
"""

from __future__ import annotations

import logging
import math
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock, SystemClock
from broadcaster.db.models import RateBucket

log = logging.getLogger(__name__)

SLICE_SECONDS = 0.1  # what a carrier meters: its share of every 100 ms
SLOTS_PER_SLICE = 5  # tokens are handed out per 20 ms slot, so a slice is not one burst
SLOT_SECONDS = SLICE_SECONDS / SLOTS_PER_SLICE
# The last slot of every slice stays empty: PDUs written a little late on a busy machine (or stamped late by
# the peer) still land in their own slice, not on top of the next slice's share.
QUIET_SLOTS = 1
# Tokens of a slot may be written until this long before its slice's quiet part begins; a sender woken
# later gives them up and reserves again (its PDUs could otherwise spill into the next slice).
GUARD_SECONDS = 0.005

# Whether the chunk being sent came from an urgent queue (``send.<channel>.<provider>.urgent``): set by the
# dispatcher for the chunk, read by a pacer whose bucket lets urgent traffic draw first (the Redis one).
urgent_traffic: ContextVar[bool] = ContextVar("urgent_traffic", default=False)


@dataclass(frozen=True)
class Slot:
    """Tokens reserved in one slot: write them from ``start``, and no later than ``write_by`` (the end of
    its slice's busy part, less the guard), epoch seconds."""

    start: float
    write_by: float
    tokens: int


def slice_share(index: int, rate: float) -> int:
    """Tokens of 100 ms slice ``index`` (counted from the epoch): the rate's running total rounded down, so
    the slices of any stretch of time add up to its share, and none holds more than one token above it."""
    return math.floor(rate * (index + 1) * SLICE_SECONDS) - math.floor(rate * index * SLICE_SECONDS)


def slot_capacity(index: int, rate: float) -> int:
    """Tokens of slot ``index``: its slice's share spread over the slice's slots but the quiet ones."""
    slice_index, position = divmod(index, SLOTS_PER_SLICE)
    active = SLOTS_PER_SLICE - QUIET_SLOTS
    if position >= active:
        return 0
    share = slice_share(slice_index, rate)
    return (share * (position + 1)) // active - (share * position) // active


def _write_by(index: int) -> float:
    slice_start = index // SLOTS_PER_SLICE * SLICE_SECONDS
    return slice_start + (SLOTS_PER_SLICE - QUIET_SLOTS) * SLOT_SECONDS - GUARD_SECONDS


def _instant(index: int) -> datetime:
    return datetime.fromtimestamp(index * SLOT_SECONDS, UTC)


def _index(moment: datetime) -> int:
    return round(moment.timestamp() / SLOT_SECONDS)


def reserve(sessions: sessionmaker[Session], *, name: str, tokens: int, rate: float, now: float) -> Slot:
    """Reserve up to ``tokens`` of the bucket ``name`` (``rate`` per second) in its first slot with room
    that starts early enough to be used; ``now`` is epoch seconds. The slot may hold fewer than asked."""
    if tokens < 1 or rate <= 0:
        raise ValueError("reserve at least one token of a positive rate")
    first = math.floor(now / SLOT_SECONDS)
    with sessions.begin() as session:
        bucket = session.scalar(select(RateBucket).where(RateBucket.name == name).with_for_update())
        if bucket is None:
            bucket = RateBucket(name=name, tokens=0.0, updated_at=_instant(first))
            session.add(bucket)
        index, taken = _index(bucket.updated_at), max(0, int(bucket.tokens))
        if index < first:
            index, taken = first, 0
        # Full (or, at a low rate, empty), or too late to write into: the next one.
        while taken >= slot_capacity(index, rate) or now > _write_by(index):
            index, taken = index + 1, 0
        granted = min(tokens, slot_capacity(index, rate) - taken)
        bucket.updated_at = _instant(index)
        bucket.tokens = float(taken + granted)
    start = index * SLOT_SECONDS
    return Slot(start=start, write_by=_write_by(index), tokens=granted)


def wait_for(slot: Slot, clock: Clock, *, bucket: str) -> bool:
    """Sleep until the slot starts; whether its tokens may still be written (not woken too late)."""
    wait = slot.start - clock.now().timestamp()
    if wait > 0:
        clock.sleep(wait)
    if clock.now().timestamp() <= slot.write_by:
        return True
    # Woken too late (a busy machine): writing now could land in the next slot on top of its share.
    log.debug("rate bucket %s: slot at %.3f missed; reserving another", bucket, slot.start)
    return False


class SharedPacer:
    """Paces one provider's PDUs through its shared bucket: ``acquire(n)`` waits for a slot and says how
    many PDUs (at most ``n``) may be written now. Given to an adapter, which takes one token per PDU."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        name: str,
        rate: float,
        clock: Clock | None = None,
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.rate = rate
        # Slots are aligned on the epoch (shared by every process), so the pacer reads the calendar.
        self.clock: Clock = clock or SystemClock()

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def acquire(self, wanted: int) -> int:
        while True:
            slot = reserve(self.sessions, name=self.name, tokens=wanted, rate=self.rate, now=self._now())
            if wait_for(slot, self.clock, bucket=self.name):
                return slot.tokens

    def __call__(self, wanted: int) -> int:
        return self.acquire(wanted)
