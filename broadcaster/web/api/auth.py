"""Who is calling the API: ``Authorization: Bearer bk_…`` (an API key), its role checked against the same
permission table as the CLI and the UI, and its rate limit (``api_requires``)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import update
from starlette.concurrency import run_in_threadpool

from broadcaster.api_keys import acting_user, actor_login, find_key, key_hash, may_use_campaign
from broadcaster.context import AppContext
from broadcaster.db.models import ApiKey, User
from broadcaster.i18n import gettext as _
from broadcaster.users import PERMISSIONS
from broadcaster.web.auth import context_of
from broadcaster.web.problems import Problem

# last_used_at is written at most this often per key (reading it needs no precision; writing on every
# request would double the writes of the single-message API).
_TOUCH_EVERY = timedelta(minutes=1)
# A key found valid is taken as valid for this long in this process without asking the database again: the
# single-message API's requests then read nothing to authenticate. A key revoked (CLI, UI or API) is refused
# by every worker at most this many seconds later (docs/web.md, "API keys").
KEY_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class ApiCaller:
    key_id: int
    prefix: str
    name: str
    role: str
    campaigns: tuple[str, ...] | None
    login: str

    def user(self) -> User:
        """The acting user the services take (transient: a key is not a person)."""
        key = ApiKey(prefix=self.prefix, name=self.name, role=self.role, campaigns=self.campaigns)
        return acting_user(key)

    def check_campaign(self, campaign_id: str) -> None:
        """A key bound to some campaigns gets 404 for the others (their existence is not its business)."""
        if not may_use_campaign(self.campaigns, campaign_id):
            raise Problem(
                404,
                "not-found",
                _("Not found"),
                _("There is no campaign %(id)s.") % {"id": campaign_id},
                field="campaign_id",
            )


class RateLimiter:
    """Requests per minute per key, in this process (a sliding window of one minute in 6 steps). With N
    uvicorn workers a key may reach N times its rate in all; docs/web.md says so."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[int, list[tuple[int, int]]] = {}

    def admit(self, key_id: int, per_minute: int, now: float | None = None) -> float | None:
        """None when admitted; else the seconds to wait (Retry-After)."""
        moment = time.monotonic() if now is None else now
        step = int(moment // 10)
        with self._lock:
            window = [(s, n) for s, n in self._windows.get(key_id, []) if s > step - 6]
            used = sum(n for _s, n in window)
            if used >= per_minute:
                self._windows[key_id] = window
                oldest = window[0][0] if window else step
                return max(1.0, (oldest + 6) * 10 - moment)
            if window and window[-1][0] == step:
                window[-1] = (step, window[-1][1] + 1)
            else:
                window.append((step, 1))
            self._windows[key_id] = window
            return None


@dataclass
class _Known:
    caller: ApiCaller
    per_minute: int
    verified_at: float  # monotonic seconds
    touched: datetime | None  # last_used_at as last read or written


class KeyCache:
    """The keys this process verified in the last ``ttl`` seconds, by the SHA-256 of the presented key (an
    unknown or revoked key is never remembered: it is looked up every time)."""

    def __init__(
        self, ttl: float = KEY_CACHE_SECONDS, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._known: dict[str, _Known] = {}

    def get(self, digest: str) -> _Known | None:
        with self._lock:
            known = self._known.get(digest)
            if known is not None and self.monotonic() - known.verified_at >= self.ttl:
                del self._known[digest]
                return None
            return known

    def put(self, digest: str, known: _Known) -> None:
        with self._lock:
            if len(self._known) > 10_000:  # keys are few; this only bounds a flood of distinct valid keys
                self._known.clear()
            self._known[digest] = known


_cache_setup = threading.Lock()


def key_cache(state: object) -> KeyCache:
    """The API app's key cache (one per worker process), made on first use."""
    with _cache_setup:
        cache = getattr(state, "key_cache", None)
        if cache is None:
            cache = KeyCache()
            state.key_cache = cache  # type: ignore[attr-defined]
    return cache


def _verified(request: Request, presented: str) -> _Known:
    """The caller behind ``presented``: from this process's cache, else from the database (then cached)."""
    cache = key_cache(request.app.state)
    digest = key_hash(presented)
    known = cache.get(digest)
    if known is None:
        context = context_of(request)
        # A read (no write lock): the single-message API's requests queue on SQLite's one writer already.
        with context.readers() as session:
            key = find_key(session, presented)
            if key is None:
                raise _unauthorised(_("The API key is not valid or was revoked."))
            caller = ApiCaller(
                key.id,
                key.prefix,
                key.name,
                key.role.value,
                tuple(key.campaigns) if key.campaigns is not None else None,
                actor_login(key),
            )
            known = _Known(caller, key.rate_per_minute, cache.monotonic(), key.last_used_at)
        cache.put(digest, known)
    return known


def _touch(context: AppContext, key_id: int, now: datetime) -> None:
    with context.sessions.begin() as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))


def _unauthorised(detail: str) -> Problem:
    return Problem(401, "unauthorised", _("Unauthorised"), detail, field="Authorization")


def api_requires(action: str) -> Callable[[Request], Awaitable[ApiCaller]]:
    """The dependency of an API operation that ``action``'s roles may call."""
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}")

    async def dependency(request: Request) -> ApiCaller:
        # On the event loop: a key this process verified lately costs no database read and no thread;
        # the reads and the once-a-minute write go to the thread pool.
        header = request.headers.get("authorization", "")
        scheme, _space, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise _unauthorised(_("Send the API key as: Authorization: Bearer <key>."))
        context = context_of(request)
        now = context.clock.now()
        known = key_cache(request.app.state).get(key_hash(presented.strip()))
        if known is None:
            known = await run_in_threadpool(_verified, request, presented.strip())
        caller, per_minute = known.caller, known.per_minute
        if known.touched is None or now - known.touched >= _TOUCH_EVERY:
            known.touched = now
            await run_in_threadpool(_touch, context, caller.key_id, now)
        if caller.role not in {role.value for role in PERMISSIONS[action]}:
            raise Problem(
                403,
                "forbidden",
                _("Forbidden"),
                _("This API key's role (%(role)s) may not do this.") % {"role": caller.role},
            )
        limiter: RateLimiter = request.app.state.rate_limiter
        wait = limiter.admit(caller.key_id, per_minute)
        if wait is not None:
            raise Problem(
                429,
                "rate-limited",
                _("Too many requests"),
                _("This API key may make %(rate)s requests a minute; try again later.")
                % {"rate": per_minute},
                retry_after=math.ceil(wait),
            )
        return caller

    dependency.broadcaster_action = action  # type: ignore[attr-defined]  # read by the permission matrix test
    return dependency
