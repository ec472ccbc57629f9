"""Provider health, as the process that talks to a provider last saw it (``provider_health``).

The SMPP gateway reports every change of its link (``LinkHealth``); the row lets ``send --wait`` tell a
waiting officer "SMSC unreachable since 13:02, retrying in 20 s" instead of showing a bar that does not move.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import Clock, local
from broadcaster.db.models import ProviderHealth
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from channels.base import LinkHealth
from channels.registry import load_adapter_class

log = logging.getLogger(__name__)

UP = "up"
UNREACHABLE = "unreachable"


def health_recorder(
    sessions: sessionmaker[Session], provider: str, *, clock: Clock
) -> Callable[[LinkHealth], None]:
    """The ``on_health`` of one provider's adapter: each report replaces the provider's row."""

    def record(health: LinkHealth) -> None:
        state = UP if health.reachable else UNREACHABLE
        with sessions.begin() as session:
            row = session.get(ProviderHealth, provider)
            if row is None:
                row = ProviderHealth(provider=provider)
                session.add(row)
            row.state = state
            row.since = health.since
            row.detail = health.detail
            row.retry_at = health.retry_at
            row.updated_at = clock.now()
        if health.reachable:
            log.info("provider %s: %s", provider, health.detail)
        else:
            log.warning(
                "provider %s unreachable: %s; next try at %s", provider, health.detail, health.retry_at
            )

    return record


def unreachable_notes(session: Session, providers: Mapping[str, str], *, now: datetime) -> list[str]:
    """One line per unreachable provider among ``providers`` (name -> type), e.g. "SMSC unreachable since
    13:02, retrying in 20 s" (local time); the provider's name is added when several are down."""
    rows = session.scalars(
        select(ProviderHealth)
        .where(ProviderHealth.provider.in_(list(providers)), ProviderHealth.state == UNREACHABLE)
        .order_by(ProviderHealth.provider)
    ).all()
    notes = []
    for row in rows:
        peer = _peer_name(providers[row.provider])
        if len(rows) > 1:
            peer = f"{peer} {row.provider}"
        retry = ""
        if row.retry_at is not None:
            seconds = round((row.retry_at - now).total_seconds())
            retry = (
                _(", retrying in %(seconds)s s") % {"seconds": seconds}
                if seconds > 0
                else _(", retrying now")
            )
        notes.append(
            _("%(peer)s unreachable since %(since)s%(retry)s")
            % {"peer": _(peer), "since": f"{local(row.since):%H:%M}", "retry": retry}
        )
    return notes


# The adapters' names for their servers (channels' capabilities.peer), for the catalogue.
PEER_NAMES = (N_("SMSC"), N_("mail relay"), N_("provider"))


def _peer_name(provider_type: str) -> str:
    """What an officer calls a provider's server ("SMSC", "mail relay"), as its adapter says (in English: the
    notes translate it)."""
    try:
        peer: str = load_adapter_class(provider_type).capabilities.peer
    except (KeyError, ImportError, AttributeError):  # a type no longer registered: say nothing wrong
        return "provider"
    return peer
