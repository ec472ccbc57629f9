"""A rolling window of one process's send outcomes per account, like GOV.UK Notify's provider switching:
when too many of the window's messages ended in a transient error or unknown, or its windows took too long,
the account is marked ``degraded`` in ``provider_health`` and routing leaves it out for ``[routing]
probe_after_seconds`` (docs/architecture.md §3, "Provider routing").

Only the gateway of an account sends through it (one per account, the lease), so its window is the whole
picture. Permanent refusals are the message's fault (an unknown number), not the account's: not counted.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from broadcaster.db.models import ProviderHealth
from broadcaster.outbox.health import UP
from broadcaster.outbox.routing import DEGRADED
from broadcaster.settings_rates import RoutingSettings

log = logging.getLogger(__name__)


@dataclass
class _Sample:
    at: float  # monotonic seconds
    good: int
    bad: int
    latency: float


@dataclass
class _Account:
    samples: deque[_Sample] = field(default_factory=deque)
    tripped_at: float | None = None  # monotonic; None: not tripped


class OutcomeWindow:
    """Outcomes per account over ``window_seconds``; ``add`` returns the account's new state when it changes
    (``degraded`` on a trip, ``up`` when it recovered after its probe), and ``on_change`` records it."""

    def __init__(self, settings: RoutingSettings, *, on_change: Callable[[str, str, str], None]) -> None:
        self.settings = settings
        self.on_change = on_change
        self._accounts: dict[str, _Account] = {}

    def add(self, provider: str, *, good: int, bad: int, latency: float, now: float) -> str | None:
        account = self._accounts.setdefault(provider, _Account())
        if account.tripped_at is not None and now - account.tripped_at < self.settings.probe_after_seconds:
            return None  # outcomes of windows already under way when it tripped: not a probe yet
        account.samples.append(_Sample(now, good, bad, latency))
        while account.samples and account.samples[0].at < now - self.settings.window_seconds:
            account.samples.popleft()
        total = sum(s.good + s.bad for s in account.samples)
        if total < self.settings.min_outcomes:
            return None
        errors = sum(s.bad for s in account.samples) / total
        latency_now = statistics.median(s.latency for s in account.samples)
        if errors > self.settings.max_error_share or latency_now > self.settings.max_latency_seconds:
            account.samples.clear()
            account.tripped_at = now
            detail = (
                f"{errors:.0%} of the last {total} messages failed or unknown, "
                f"median window answered in {latency_now:.1f} s"
            )
            self.on_change(provider, DEGRADED, detail)
            return DEGRADED
        if account.tripped_at is not None:  # probed, and good again
            account.tripped_at = None
            self.on_change(provider, UP, f"recovered: {errors:.0%} of the last {total} messages failed")
            return UP
        return None


def state_recorder(
    sessions: sessionmaker[Session], *, now: Callable[[], datetime]
) -> Callable[[str, str, str], None]:
    """``OutcomeWindow``'s ``on_change``: the account's ``provider_health`` row, which routing reads."""

    def record(provider: str, state: str, detail: str) -> None:
        with sessions.begin() as session:
            row = session.get(ProviderHealth, provider)
            if row is None:
                row = ProviderHealth(provider=provider)
                session.add(row)
            if state == UP and row.state != DEGRADED:
                return  # the link's own report (unreachable) wins over the window's recovery
            row.state = state
            row.since = row.updated_at = now()
            row.detail = detail
            row.retry_at = None
        log.warning("provider %s: %s (%s)", provider, state, detail)

    return record
