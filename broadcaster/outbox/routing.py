"""Which SMSC account carries a message: ``[routes.NAME]`` shares the messages planned to provider NAME
between accounts by allocated carrier and weight, leaving out accounts that are down or slow
(docs/architecture.md §3, "Provider routing").

Routing happens twice. At planning, each message gets an account (``Router.pick``): weighted, and stable
for an address (a crc32 of it, the same in every process), so a re-plan sends it the same way. At dispatch,
the gateway of an account that is down or tripped moves its chunk's messages that are still queued, never
claimed, to a healthy account of the route (``move_queued``): the move is one guarded ``UPDATE`` on
``status = 'queued'`` and the chunk, and a claim is one on the same guard, so a message is either moved or
sent, never both.

An account is unhealthy while its link has been down for ``[routing] failover_after_seconds`` (its
adapter's ``provider_health`` row says ``unreachable``) or while its window of outcomes tripped it
(``degraded``, written by ``outcomes.OutcomeWindow``) less than ``probe_after_seconds`` ago; after that it
is tried again, and it trips again at once if it is still bad.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcaster.db.models import Contact, Message, ProviderHealth
from broadcaster.outbox.health import UNREACHABLE
from broadcaster.settings import Settings
from broadcaster.vocabulary import MessageStatus

DEGRADED = "degraded"  # provider_health.state of an account its outcome window tripped
DEFAULT_CARRIER = "default"
REROUTE_PAGE = 5000  # messages the tick moves off unhealthy accounts per pass


def _point(key: str) -> float:
    """Where ``key`` falls in [0, 1): the same in every process and run (unlike ``hash``)."""
    return zlib.crc32(key.encode()) / 2**32


def weighted(accounts: Sequence[tuple[str, float]], key: str) -> str:
    """The account of ``key`` among weighted ``accounts``: each takes its weight's share of the keys."""
    total = sum(weight for _, weight in accounts)
    point = _point(key) * total
    for account, weight in accounts:
        if point < weight:
            return account
        point -= weight
    return accounts[-1][0]


@dataclass(frozen=True)
class Router:
    settings: Settings

    def route_of(self, provider: str) -> str | None:
        """The route an account belongs to: its own, or the first that lists it."""
        if provider in self.settings.routes:
            return provider
        for name, route in self.settings.routes.items():
            if any(account == provider for accounts in route.values() for account, _ in accounts):
                return name
        return None

    def pick(self, provider: str, *, carrier: str | None, key: str, unhealthy: Collection[str] = ()) -> str:
        """The account for a message planned to ``provider`` (a route's name, or a plain provider)."""
        route = self.settings.routes.get(provider)
        if route is None:
            return provider
        accounts = route.get(carrier or "") or route.get(DEFAULT_CARRIER) or [(provider, 1.0)]
        healthy = [(a, w) for a, w in accounts if a not in unhealthy]
        if not healthy:  # the carrier's accounts are all down: any healthy account of the route
            others = {a: w for entries in route.values() for a, w in entries if a not in unhealthy}
            if provider not in unhealthy and provider in self.settings.providers:
                others.setdefault(provider, 1.0)
            healthy = sorted(others.items())
        return weighted(healthy or accounts, key)

    def alternative(
        self, provider: str, *, carrier: str | None, key: str, unhealthy: Collection[str]
    ) -> str | None:
        """Where a queued message of the unhealthy account ``provider`` goes instead (None: nowhere)."""
        route = self.route_of(provider)
        if route is None:
            return None
        chosen = self.pick(route, carrier=carrier, key=key, unhealthy={*unhealthy, provider})
        return None if chosen == provider or chosen in unhealthy else chosen


def unhealthy_providers(session: Session, settings: Settings, *, now: datetime) -> set[str]:
    """Accounts routing leaves out now: down for longer than ``failover_after_seconds``, or tripped by
    their outcome window less than ``probe_after_seconds`` ago."""
    routing = settings.routing
    down_since = now - timedelta(seconds=routing.failover_after_seconds)
    tripped_since = now - timedelta(seconds=routing.probe_after_seconds)
    rows = session.execute(select(ProviderHealth.provider, ProviderHealth.state, ProviderHealth.since)).all()
    return {
        provider
        for provider, state, since in rows
        if (state == UNREACHABLE and since <= down_since) or (state == DEGRADED and since > tripped_since)
    }


def move_queued(
    session: Session, chunk_id: int, provider: str, *, router: Router, unhealthy: Collection[str]
) -> dict[str, list[int]]:
    """Move the chunk's queued messages to other accounts of their route and out of the chunk (the caller
    cuts new chunks for them); returns account → message ids moved. Messages with nowhere to go stay."""
    rows = session.execute(
        select(Message.id, Message.address, Contact.carrier)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .where(Message.chunk_id == chunk_id, Message.status == MessageStatus.QUEUED)
    ).all()
    targets: dict[str, list[int]] = {}
    for message_id, address, carrier in rows:
        target = router.alternative(provider, carrier=carrier, key=address, unhealthy=unhealthy)
        if target is not None:
            targets.setdefault(target, []).append(message_id)
    moved: dict[str, list[int]] = {}
    for target, ids in targets.items():
        done = session.scalars(
            update(Message)
            .where(
                Message.id.in_(ids),
                Message.chunk_id == chunk_id,
                Message.status == MessageStatus.QUEUED,  # a claimed message stays where it is being sent
            )
            .values(provider=target, chunk_id=None)
            .returning(Message.id)
        ).all()
        if done:
            moved[target] = list(done)
    return moved


def assign_accounts(
    session: Session,
    rows: list[dict[str, Any]],
    carriers: Mapping[int, str | None],
    *,
    settings: Settings,
    now: datetime,
) -> None:
    """At planning: each new message row planned to a routed provider gets its account (``carriers``:
    contact id → allocated carrier)."""
    router = Router(settings)
    unhealthy = unhealthy_providers(session, settings, now=now)
    for row in rows:
        if row["provider"] in settings.routes:
            row["provider"] = router.pick(
                row["provider"],
                carrier=carriers.get(row["contact_id"]),
                key=row["address"],
                unhealthy=unhealthy,
            )


def reroute_unchunked(session: Session, settings: Settings, *, now: datetime) -> int:
    """Before chunks are cut: queued messages of an unhealthy routed account that no chunk holds (deferred,
    or released by a chunk that stopped) move to a healthy account of their route, ``REROUTE_PAGE`` per call
    (the next tick goes on). Returns how many moved."""
    router = Router(settings)
    unhealthy = unhealthy_providers(session, settings, now=now)
    routed = [provider for provider in unhealthy if router.route_of(provider) is not None]
    if not routed:
        return 0
    unchunked = (Message.chunk_id.is_(None), Message.status == MessageStatus.QUEUED)
    rows = session.execute(
        select(Message.id, Message.provider, Message.address, Contact.carrier)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .where(Message.provider.in_(routed), *unchunked)
        .order_by(Message.id)
        .limit(REROUTE_PAGE)
    ).all()
    targets: dict[str, list[int]] = {}
    for message_id, provider, address, carrier in rows:
        target = router.alternative(provider, carrier=carrier, key=address, unhealthy=unhealthy)
        if target is not None:
            targets.setdefault(target, []).append(message_id)
    moved = 0
    for target, ids in targets.items():
        done = session.scalars(
            update(Message)
            .where(Message.id.in_(ids), *unchunked)
            .values(provider=target)
            .returning(Message.id)
        ).all()
        moved += len(done)
    return moved
