"""A provider's rate limit in Redis, shared by every worker of a distributed deployment.

The same bucket as the database one (``ratelimit``): counted in PDUs, the clock cut into 20 ms slots aligned
on the epoch that share out each 100 ms slice's tokens, the last slot of each slice quiet, a slot's tokens
written no later than its slice's busy part. One Lua script takes the tokens atomically, so no lock and no
transaction are held between processes: a reservation is one round trip.

Two things the database bucket does not do (docs/architecture.md §3, "Rate limits"):

- **Throttling answers slow the bucket.** An SMSC that answers ESME_RTHROTTLED (or ESME_RMSGQFUL) meters
  lower than the account's ``tps``: the bucket's share is halved, at most once per ``HALVING_GAP_SECONDS``
  (a window of throttled answers is one signal), down to ``[rate_limit] throttle_floor`` of ``tps``, and
  comes back gradually (``recovery_per_second`` of ``tps`` per second without a throttling answer).
- **Urgent traffic draws first.** While a sender of an urgent chunk (queue ``send.<channel>.<provider>.urgent``)
  has asked within ``URGENT_HOLD_SECONDS``, normal senders get no tokens and ask again after it.
"""

from __future__ import annotations

import logging
from typing import Any

from broadcaster.clock import Clock, SystemClock
from broadcaster.outbox.ratelimit import (
    GUARD_SECONDS,
    QUIET_SLOTS,
    SLOT_SECONDS,
    SLOTS_PER_SLICE,
    Slot,
    urgent_traffic,
    wait_for,
)

log = logging.getLogger(__name__)

# Normal senders wait this long after the latest urgent request (two slices: an urgent sender asks once per
# slot it writes in, so a gap this long means its chunk is done or waiting for answers).
URGENT_HOLD_SECONDS = 0.2
# Throttling answers within this long of a halving are the same signal (a window's worth of answers).
HALVING_GAP_SECONDS = 1.0
# A bucket nobody drew from for this long is forgotten (its share starts whole again).
IDLE_EXPIRY_MS = 3_600_000
# While the Redis server cannot be reached (restarted, say), a sender asks again this often; it writes nothing
# meanwhile, so the rate is kept whatever happens to the bucket.
UNREACHABLE_RETRY_SECONDS = 0.5
# How far ahead one reservation may look for a slot with room (a very low rate at a deep cut).
MAX_SLOTS_AHEAD = 100_000

# KEYS[1]: the bucket's hash. ARGV: now (epoch s), tokens wanted, tps, urgent (1/0), floor, recovery/s.
# Fields: slot (latest slot with reservations), taken (its tokens taken), share (the rate's share after
# throttling, at share_at), urgent_at (latest urgent request). Returns {granted, slot index, retry_at}:
# granted 0 with retry_at (as a string: Lua numbers reach Python as integers) for a normal sender held back.
_RESERVE = f"""
local key = KEYS[1]
local now, wanted, tps = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local urgent, floor_share, recovery = ARGV[4] == '1', tonumber(ARGV[5]), tonumber(ARGV[6])
local slot_s, per_slice, quiet, guard = {SLOT_SECONDS!r}, {SLOTS_PER_SLICE}, {QUIET_SLOTS}, {GUARD_SECONDS!r}
local f = redis.call('HMGET', key, 'slot', 'taken', 'share', 'share_at', 'urgent_at')
redis.call('PEXPIRE', key, {IDLE_EXPIRY_MS})
if urgent then
  redis.call('HSET', key, 'urgent_at', tostring(now))
elseif f[5] and now - tonumber(f[5]) < {URGENT_HOLD_SECONDS!r} then
  return {{0, 0, tostring(tonumber(f[5]) + {URGENT_HOLD_SECONDS!r})}}
end
local share = 1.0
if f[3] then
  share = math.min(1.0, math.max(floor_share, tonumber(f[3]) + recovery * (now - tonumber(f[4]))))
end
local rate = tps * share
local function slice_share(i)
  return math.floor(rate * (i + 1) / 10) - math.floor(rate * i / 10)
end
local function capacity(index)
  local slice = math.floor(index / per_slice)
  local position = index - slice * per_slice
  local active = per_slice - quiet
  if position >= active then return 0 end
  local s = slice_share(slice)
  return math.floor(s * (position + 1) / active) - math.floor(s * position / active)
end
local active_end = (per_slice - quiet) * slot_s
local function write_by(index)
  return math.floor(index / per_slice) * per_slice * slot_s + active_end - guard
end
local first = math.floor(now / slot_s)
local index, taken = first, 0
if f[1] and tonumber(f[1]) >= first then
  index, taken = tonumber(f[1]), tonumber(f[2])
end
local limit = index + {MAX_SLOTS_AHEAD}
while taken >= capacity(index) or now > write_by(index) do
  index, taken = index + 1, 0
  if index > limit then return redis.error_reply('rate bucket: no slot with room') end
end
local granted = math.min(wanted, capacity(index) - taken)
redis.call('HSET', key, 'slot', index, 'taken', taken + granted)
return {{granted, index, '0'}}
"""

# KEYS[1]: the bucket's hash. ARGV: now, floor, recovery/s. Halves the share (once per gap); returns it.
_THROTTLED = f"""
local key = KEYS[1]
local now, floor_share, recovery = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local f = redis.call('HMGET', key, 'share', 'share_at', 'halved_at')
local share = 1.0
if f[1] then
  share = math.min(1.0, math.max(floor_share, tonumber(f[1]) + recovery * (now - tonumber(f[2]))))
end
if f[3] and now - tonumber(f[3]) < {HALVING_GAP_SECONDS!r} then
  return tostring(share)
end
share = math.max(floor_share, share / 2)
redis.call('HSET', key, 'share', tostring(share), 'share_at', tostring(now), 'halved_at', tostring(now))
redis.call('PEXPIRE', key, {IDLE_EXPIRY_MS})
return tostring(share)
"""

# KEYS[1]: the bucket's hash. ARGV: now, floor, recovery/s. The share now, without changing it.
_SHARE = """
local f = redis.call('HMGET', KEYS[1], 'share', 'share_at')
if not f[1] then return '1' end
local now, floor_share, recovery = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
return tostring(math.min(1.0, math.max(floor_share, tonumber(f[1]) + recovery * (now - tonumber(f[2])))))
"""


class RedisBucket:
    """The scripts of one Redis server, registered once per process (redis-py sends EVALSHA, and the
    script's text again only if the server has forgotten it)."""

    def __init__(self, client: Any, *, throttle_floor: float, recovery_per_second: float) -> None:
        self.client = client
        self.throttle_floor = throttle_floor
        self.recovery_per_second = recovery_per_second
        self._reserve = client.register_script(_RESERVE)
        self._throttled = client.register_script(_THROTTLED)
        self._share = client.register_script(_SHARE)
        from redis.exceptions import (  # the "redis" extra: installed with the client
            ConnectionError,
            TimeoutError,
        )

        self.unreachable: tuple[type[Exception], ...] = (ConnectionError, TimeoutError)

    @staticmethod
    def key(name: str) -> str:
        return f"broadcaster:rate:{name}"

    def reserve(self, name: str, *, tokens: int, rate: float, now: float, urgent: bool) -> Slot | float:
        """Up to ``tokens`` in the first slot with room (a ``Slot``), or, for a normal sender while urgent
        traffic draws, the epoch second at which to ask again."""
        if tokens < 1 or rate <= 0:
            raise ValueError("reserve at least one token of a positive rate")
        granted, index, retry_at = self._reserve(
            keys=[self.key(name)],
            args=[repr(now), tokens, repr(rate), 1 if urgent else 0, *self._recovery()],
        )
        if int(granted) == 0:
            return float(retry_at)
        index = int(index)
        slice_start = index // SLOTS_PER_SLICE * SLOTS_PER_SLICE * SLOT_SECONDS
        write_by = slice_start + (SLOTS_PER_SLICE - QUIET_SLOTS) * SLOT_SECONDS - GUARD_SECONDS
        return Slot(start=index * SLOT_SECONDS, write_by=write_by, tokens=int(granted))

    def throttled(self, name: str, *, now: float) -> float:
        """A throttling answer: halve the bucket's share (once per gap); returns the share now."""
        return float(self._throttled(keys=[self.key(name)], args=[repr(now), *self._recovery()]))

    def share(self, name: str, *, now: float) -> float:
        """The share of ``tps`` the bucket hands out now (1.0 unless throttling answers cut it)."""
        return float(self._share(keys=[self.key(name)], args=[repr(now), *self._recovery()]))

    def _recovery(self) -> list[str]:
        return [repr(self.throttle_floor), repr(self.recovery_per_second)]


class RedisPacer:
    """Paces one provider's PDUs through its Redis bucket, like ``ratelimit.SharedPacer``; ``throttled()``
    is called by the adapter on a throttling answer. Urgency is the calling chunk's (``urgent_traffic``)."""

    def __init__(self, bucket: RedisBucket, *, name: str, rate: float, clock: Clock | None = None) -> None:
        self.bucket = bucket
        self.name = name
        self.rate = rate
        self.clock: Clock = clock or SystemClock()  # slots are aligned on the epoch: the calendar

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def acquire(self, wanted: int, *, urgent: bool | None = None) -> int:
        urgent = urgent_traffic.get() if urgent is None else urgent
        while True:
            try:
                slot = self.bucket.reserve(
                    self.name, tokens=wanted, rate=self.rate, now=self._now(), urgent=urgent
                )
            except self.bucket.unreachable as exc:
                log.warning("rate bucket %s: Redis unreachable (%s); asking again", self.name, exc)
                self.clock.sleep(UNREACHABLE_RETRY_SECONDS)
                continue
            if isinstance(slot, float):  # urgent traffic draws first
                self.clock.sleep(max(0.0, slot - self._now()))
                continue
            if wait_for(slot, self.clock, bucket=self.name):
                return slot.tokens

    def throttled(self) -> None:
        try:
            share = self.bucket.throttled(self.name, now=self._now())
        except self.bucket.unreachable as exc:  # the bucket is not slowed this once; the next answer will
            log.warning(
                "rate bucket %s: Redis unreachable (%s); throttling answer not counted", self.name, exc
            )
            return
        log.info(
            "rate bucket %s: throttling answer; sending at %.0f%% of %s/s", self.name, share * 100, self.rate
        )

    def __call__(self, wanted: int) -> int:
        return self.acquire(wanted)
