"""``broadcaster health``: is this installation able to send? One check per component, each ok, degraded or
unhealthy, with a line that says why (docs/supervision.md, "Health").

Components: ``database`` (connect, schema at the newest revision), ``broker`` (connect), ``providers`` (an
SMPP account: its gateway holds the lease and its link is up; a mail relay: connect + EHLO + NOOP; others: the
last health their sender recorded), ``beat`` (the tick's heartbeat), ``backlog`` (the oldest due queued
message). Thresholds are ``[health]`` settings."""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from broadcaster.context import AppContext
from broadcaster.db.models import Lease, ProviderHealth
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.observe import facts
from broadcaster.observe.heartbeat import last_beat
from broadcaster.observe.probes import probe_broker, probe_relay
from broadcaster.outbox.health import UNREACHABLE
from channels.registry import load_adapter_class

COMPONENTS = ("database", "broker", "providers", "beat", "backlog")
# What the table calls each component (translated when printed).
COMPONENT_LABELS = {
    "database": N_("database"),
    "broker": N_("broker"),
    "providers": N_("providers"),
    "beat": N_("tick (beat)"),
    "backlog": N_("backlog"),
}
SMTP_TYPES = frozenset({"smtp"})


class State(enum.IntEnum):
    """Ordered by gravity: the report's state is its worst check's."""

    OK = 0
    DEGRADED = 1
    UNHEALTHY = 2

    @property
    def word(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Check:
    component: str
    name: str
    state: State
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {
            "component": self.component,
            "name": self.name,
            "state": self.state.word,
            "detail": self.detail,
        }


def worst(checks: Collection[Check]) -> State:
    return max((check.state for check in checks), default=State.OK)


def parse_components(text_value: str | None) -> tuple[str, ...]:
    """``--only database,broker`` → the components, in their order; a typo is named."""
    if not text_value:
        return COMPONENTS
    wanted = [part.strip() for part in text_value.split(",") if part.strip()]
    unknown = [part for part in wanted if part not in COMPONENTS]
    if unknown:
        raise ValueError(
            _("--only: unknown component(s) %(unknown)s; choose among %(known)s")
            % {"unknown": ", ".join(unknown), "known": ", ".join(COMPONENTS)}
        )
    return tuple(c for c in COMPONENTS if c in wanted)


def run_checks(context: AppContext, components: Collection[str] = COMPONENTS) -> list[Check]:
    """The checks of ``components``; one that needs the database reports it unreachable instead of failing."""
    runners: dict[str, Callable[[AppContext, datetime], list[Check]]] = {
        "database": _database,
        "broker": _broker,
        "providers": _providers,
        "beat": _beat,
        "backlog": _backlog,
    }
    now = context.clock.now()
    checks: list[Check] = []
    for component in COMPONENTS:
        if component not in components:
            continue
        try:
            checks.extend(runners[component](context, now))
        except SQLAlchemyError as exc:
            detail = _("database unreachable: %(error)s") % {"error": _first_line(exc)}
            checks.append(Check(component, component, State.UNHEALTHY, detail))
    return checks


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _database(context: AppContext, _now: datetime) -> list[Check]:
    from broadcaster.db.migrate import current_revision, head_revision

    with context.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    revision, head = current_revision(context.engine), head_revision()
    if revision != head:
        detail = _(
            "schema at revision %(revision)s, the code needs %(head)s: run `broadcaster db upgrade`"
        ) % {
            "revision": revision or "-",
            "head": head,
        }
        return [Check("database", "database", State.UNHEALTHY, detail)]
    return [
        Check("database", "database", State.OK, _("reachable, schema %(revision)s") % {"revision": revision})
    ]


def _broker(context: AppContext, _now: datetime) -> list[Check]:
    scheme = context.settings.broker_url.split(":", 1)[0]
    error = probe_broker(context.settings, timeout=context.settings.health.probe_timeout_seconds)
    if error is not None:
        detail = _("%(scheme)s broker unreachable: %(error)s") % {"scheme": scheme, "error": error}
        return [Check("broker", "broker", State.UNHEALTHY, detail)]
    return [Check("broker", "broker", State.OK, _("%(scheme)s broker reachable") % {"scheme": scheme})]


def _providers(context: AppContext, now: datetime) -> list[Check]:
    settings = context.settings
    with context.readers() as session:
        health = {row.provider: row for row in session.scalars(select(ProviderHealth))}
        leases = {row.name: row for row in session.scalars(select(Lease).where(Lease.name.like("gateway:%")))}
    checks = []
    for name, provider in sorted(settings.providers.items()):
        if load_adapter_class(provider.type).capabilities.gateway:
            lease = leases.get(f"gateway:{name}")
            if lease is None or lease.holder is None or lease.expires_at is None or lease.expires_at <= now:
                detail = _("no gateway holds this account: start `broadcaster worker --gateway %(name)s`")
                checks.append(Check("providers", name, State.UNHEALTHY, detail % {"name": name}))
                continue
        elif provider.type in SMTP_TYPES:
            error = probe_relay(provider.options(), timeout=settings.health.probe_timeout_seconds)
            if error is not None:
                detail = _("mail relay unreachable: %(error)s") % {"error": error}
                checks.append(Check("providers", name, State.UNHEALTHY, detail))
            else:
                checks.append(Check("providers", name, State.OK, _("mail relay answers EHLO")))
            continue
        checks.append(_recorded(name, health.get(name), now, settings.health.provider_down_seconds))
    return checks


def _recorded(name: str, row: ProviderHealth | None, now: datetime, down_seconds: float) -> Check:
    """What the provider's sender last recorded of its link."""
    if row is None:
        return Check("providers", name, State.OK, _("no link reported yet"))
    if row.state != UNREACHABLE:
        return Check("providers", name, State.OK, row.detail or _("up"))
    down_for = (now - row.since).total_seconds()
    state = State.UNHEALTHY if down_for >= down_seconds else State.DEGRADED
    detail = _("unreachable for %(seconds)s s: %(detail)s") % {
        "seconds": round(down_for),
        "detail": row.detail or "-",
    }
    return Check("providers", name, state, detail)


def _beat(context: AppContext, now: datetime) -> list[Check]:
    with context.readers() as session:
        beat = last_beat(session)
    if beat is None:
        return [Check("beat", "beat", State.UNHEALTHY, _("the tick never ran: start `broadcaster beat`"))]
    at, holder = beat
    age = (now - at).total_seconds()
    values = {"seconds": round(age), "holder": holder}
    if age > context.settings.health.beat_stale_seconds:
        return [
            Check("beat", "beat", State.UNHEALTHY, _("last tick %(seconds)s s ago (%(holder)s)") % values)
        ]
    return [Check("beat", "beat", State.OK, _("last tick %(seconds)s s ago (%(holder)s)") % values)]


def _backlog(context: AppContext, now: datetime) -> list[Check]:
    limits = context.settings.health
    with context.readers() as session:
        age = facts.backlog(session, now).age_seconds(now)
    state = State.OK
    if age >= limits.backlog_unhealthy_seconds:
        state = State.UNHEALTHY
    elif age >= limits.backlog_degraded_seconds:
        state = State.DEGRADED
    detail = (
        _("oldest due queued message waits %(seconds)s s") % {"seconds": round(age)}
        if age
        else _("nothing waits")
    )
    return [Check("backlog", "backlog", state, detail)]
