"""Prometheus metrics computed from the database when Prometheus scrapes (docs/supervision.md, "Metrics").

Why from the database and not from counters in the workers: the outbox rows are the truth, every process
(Celery workers, gateways, beat, ``serve``) writes them, and a scrape then sees the same figures whichever
process answers, with no multiprocess registry to keep and no count lost with a killed worker. Each figure is
one indexed query (``broadcaster.observe.facts``); a scrape costs a few milliseconds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from broadcaster.context import AppContext
from broadcaster.db.monitoring import AlertIncident
from broadcaster.observe import facts
from broadcaster.observe.heartbeat import last_beat
from broadcaster.observe.probes import probe_broker
from broadcaster.outbox.instruments import MULTIPROC_ENV

log = logging.getLogger(__name__)

PREFIX = "broadcaster"
# Every metric this module exposes, by name: docker/prometheus/alerts.yml may use only these.
METRIC_NAMES = (
    f"{PREFIX}_up",
    f"{PREFIX}_broker_up",
    f"{PREFIX}_messages",
    f"{PREFIX}_messages_waiting",
    f"{PREFIX}_backlog_age_seconds",
    f"{PREFIX}_receipts_pending",
    f"{PREFIX}_campaigns_paused",
    f"{PREFIX}_tick_age_seconds",
    f"{PREFIX}_provider_up",
    f"{PREFIX}_alerts_open",
)


class OutboxCollector(Collector):
    """Reads the outbox at each scrape; ``broadcaster_up`` 0 says the database did not answer."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(f"{PREFIX}_up", "1 when the database answered this scrape")
        try:
            families = list(self._from_database())
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        broker = GaugeMetricFamily(f"{PREFIX}_broker_up", "1 when the broker accepted a connection")
        timeout = self.context.settings.health.probe_timeout_seconds
        broker.add_metric([], 0 if probe_broker(self.context.settings, timeout=timeout) else 1)
        yield broker

    def _from_database(self) -> Iterator[GaugeMetricFamily]:
        from broadcaster.db.models import ProviderHealth
        from broadcaster.outbox.health import UNREACHABLE

        now = self.context.clock.now()
        with self.context.readers() as session:
            totals = facts.message_totals(session)
            waiting = facts.waiting_messages(session)
            backlog = facts.backlog(session, now)
            receipts = facts.receipts_pending(session)
            paused = facts.paused_campaigns(session)
            beat = last_beat(session)
            links = list(session.execute(select(ProviderHealth.provider, ProviderHealth.state)))
            alerts = list(
                session.execute(
                    select(AlertIncident.kind, func.count())
                    .where(AlertIncident.resolved_at.is_(None), AlertIncident.notified_at.is_not(None))
                    .group_by(AlertIncident.kind)
                )
            )
        messages = GaugeMetricFamily(
            f"{PREFIX}_messages",
            "Messages by channel and status (test sends included)",
            labels=["channel", "status"],
        )
        for channel, status, count in totals:
            messages.add_metric([channel, status], count)
        yield messages
        pending = GaugeMetricFamily(
            f"{PREFIX}_messages_waiting",
            "Messages not settled yet (queued, sending, unknown) by channel, provider and status",
            labels=["channel", "provider", "status"],
        )
        for channel, provider, status, count in waiting:
            pending.add_metric([channel, provider, status], count)
        yield pending
        yield GaugeMetricFamily(
            f"{PREFIX}_backlog_age_seconds",
            "How long the oldest due queued message has waited (0: none waits)",
            value=backlog.age_seconds(now),
        )
        inbound = GaugeMetricFamily(
            f"{PREFIX}_receipts_pending",
            "Inbound records (receipts, bounces, replies) not applied",
            labels=["provider"],
        )
        for provider, count in receipts:
            inbound.add_metric([provider], count)
        yield inbound
        yield GaugeMetricFamily(f"{PREFIX}_campaigns_paused", "Paused campaigns", value=len(paused))
        yield GaugeMetricFamily(
            f"{PREFIX}_tick_age_seconds",
            "Seconds since the tick (beat or run) last ran; -1 when it never did",
            value=-1 if beat is None else (now - beat[0]).total_seconds(),
        )
        provider_up = GaugeMetricFamily(
            f"{PREFIX}_provider_up", "1 when the provider's link was last seen up", labels=["provider"]
        )
        for provider, state in links:
            provider_up.add_metric([provider], 0 if state == UNREACHABLE else 1)
        yield provider_up
        open_alerts = GaugeMetricFamily(
            f"{PREFIX}_alerts_open", "Alerts told and not over, by kind", labels=["kind"]
        )
        for kind, count in alerts:
            open_alerts.add_metric([kind], count)
        yield open_alerts


def registry_for(context: AppContext) -> CollectorRegistry:
    """The outbox's figures, plus the workers' process metrics of this host when they write them to
    ``PROMETHEUS_MULTIPROC_DIR`` (``broadcaster.outbox.instruments``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutboxCollector(context))
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        os.makedirs(directory, exist_ok=True)
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry
